"""The wallet-signed management message grammar and its checks (pure; signature recovery is infra).

    Pryv API key mgmt | action=<action> | keyId=<key id or empty> | nonce=<nonce> | ts=<ISO 8601>

Each failed check has its own code so clients can tell a clock problem from a replay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from domain.errors import ErrorKind, PryvError

MESSAGE_PREFIX = "Pryv API key mgmt"
TIMESTAMP_WINDOW = timedelta(minutes=5)
NONCE_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{8,128}$")
_FIELD_ORDER = ("action", "keyId", "nonce", "ts")


class WalletAction(StrEnum):
    CREATE = "create"
    LIST = "list"
    REVOKE = "revoke"
    UPDATE = "update"
    ROTATE = "rotate"
    BALANCE = "balance"
    LEDGER = "ledger"
    USAGE = "usage"
    ACTIVITY = "activity"
    CHECKOUT = "checkout"
    SETTINGS = "settings"


class WalletAuthCode(StrEnum):
    MESSAGE_INVALID = "MESSAGE_INVALID"
    ACTION_MISMATCH = "ACTION_MISMATCH"
    KEY_ID_MISMATCH = "KEY_ID_MISMATCH"
    NONCE_REPLAY = "NONCE_REPLAY"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    SIGNATURE_VERIFY_ERROR = "SIGNATURE_VERIFY_ERROR"
    TIMESTAMP_EXPIRED = "TIMESTAMP_EXPIRED"


class WalletAuthError(PryvError):
    kind = ErrorKind.PERMISSION

    def __init__(self, code: WalletAuthCode, message: str) -> None:
        super().__init__(message, code=code)


@dataclass(frozen=True)
class WalletMessage:
    action: str
    key_id: str
    nonce: str
    ts: datetime


def format_wallet_message(action: str, key_id: str, nonce: str, ts: datetime) -> str:
    """The exact text a wallet signs; `ts` is rendered like JavaScript's toISOString()."""
    stamp = ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"{MESSAGE_PREFIX} | action={action} | keyId={key_id} | nonce={nonce} | ts={stamp}"


def parse_wallet_message(text: str) -> WalletMessage:
    parts = [part.strip() for part in text.split("|")]
    if len(parts) != 1 + len(_FIELD_ORDER) or parts[0] != MESSAGE_PREFIX:
        raise WalletAuthError(
            WalletAuthCode.MESSAGE_INVALID,
            f"message must be '{MESSAGE_PREFIX} | action=… | keyId=… | nonce=… | ts=…'",
        )
    fields: dict[str, str] = {}
    for name, part in zip(_FIELD_ORDER, parts[1:], strict=True):
        key, sep, value = part.partition("=")
        if not sep or key != name:
            raise WalletAuthError(WalletAuthCode.MESSAGE_INVALID, f"expected '{name}=' in message")
        fields[name] = value
    if not NONCE_PATTERN.match(fields["nonce"]):
        raise WalletAuthError(
            WalletAuthCode.MESSAGE_INVALID, "nonce must be 8-128 characters of [A-Za-z0-9_.:-]"
        )
    try:
        ts = datetime.fromisoformat(fields["ts"])
    except ValueError as exc:
        raise WalletAuthError(WalletAuthCode.MESSAGE_INVALID, "ts must be ISO 8601") from exc
    if ts.tzinfo is None:
        raise WalletAuthError(WalletAuthCode.MESSAGE_INVALID, "ts must carry a timezone (Z)")
    return WalletMessage(fields["action"], fields["keyId"], fields["nonce"], ts)


def check_wallet_message(
    message: WalletMessage,
    *,
    action: WalletAction,
    key_id: str,
    now: datetime,
    window: timedelta = TIMESTAMP_WINDOW,
) -> None:
    """Bind the signed message to this call: right action, right key, fresh timestamp."""
    if message.action != action.value:
        raise WalletAuthError(
            WalletAuthCode.ACTION_MISMATCH,
            f"message action '{message.action}' does not match '{action.value}'",
        )
    if message.key_id != key_id:
        raise WalletAuthError(
            WalletAuthCode.KEY_ID_MISMATCH, "message keyId does not match the key in the request"
        )
    if abs(now - message.ts) > window:
        raise WalletAuthError(
            WalletAuthCode.TIMESTAMP_EXPIRED,
            f"message ts is more than {int(window.total_seconds())} s from server time",
        )
