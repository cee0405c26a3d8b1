"""Authorization evidence: what each money or key event carries to show who allowed it.

An event is only as trustworthy as its evidence. Evidence is a flat dict of strings stored in
the event itself, so an auditor holding the log checks it offline (docs/audit.md):

- `wallet`: the management message the wallet signed (EIP-191) and its signature. The message
  binds the action, the key id and a fresh timestamp; its nonce authorizes one event only.
- `siwe`: an EIP-4361 sign-in message and signature (an MCP client's consent).
- `operator`: an operator key's EIP-191 signature over `operator_statement` — the event's
  name, aggregate, version and every field — so a grant or CLI revocation names who made it
  and cannot be edited or replayed onto another aggregate.
- `stripe`: the id of the signed Stripe webhook event that reported the payment (reconcile
  holds it against Stripe).
- `payment`: an MPP payment (`method` tempo|stripe, `reference` the transaction or
  PaymentIntent) that bought the credit or the pay-per-call key.

Usage holds carry no evidence field: they are authorized by the API key they name, which must
be a key the log created (with evidence) for the same account.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

from domain.wallet_messages import TIMESTAMP_WINDOW, WalletAuthError, parse_wallet_message

Evidence = dict[str, str]
OPERATOR_STATEMENT_PREFIX = "Pryv operator action"
# A signed request and the event it authorizes are written within moments of each other; the
# window is the wallet message's own freshness window plus slack for a slow write.
EVENT_WINDOW = TIMESTAMP_WINDOW + timedelta(minutes=1)


class EvidenceKind(StrEnum):
    WALLET = "wallet"
    SIWE = "siwe"
    OPERATOR = "operator"
    STRIPE = "stripe"
    PAYMENT = "payment"


_W, _S, _O, _ST, _P = (
    EvidenceKind.WALLET,
    EvidenceKind.SIWE,
    EvidenceKind.OPERATOR,
    EvidenceKind.STRIPE,
    EvidenceKind.PAYMENT,
)
# Event (aggregate class . event class) -> the evidence kinds that may authorize it.
REQUIRED: dict[str, tuple[EvidenceKind, ...]] = {
    "Account.SettingsChanged": (_W,),
    "Account.ConnectionAuthorized": (_S,),
    "ApiKey.Created": (_W, _S, _O, _P),
    "ApiKey.LimitsChanged": (_W, _O),
    "ApiKey.Revoked": (_W, _O),
    "ApiKey.Rolled": (_W, _O),
    "CreditPurchase.Completed": (_ST, _P),
    "CreditGrant.Granted": (_O, _P),
    "RejectedPayment.Recorded": (_ST,),
    "ChargeRefunds.Opened": (_ST,),
    "ChargeRefunds.Refunded": (_ST,),
    "ChargeDispute.Opened": (_ST,),
    "ChargeDispute.Reinstated": (_ST,),
}
# The wallet message action that authorizes each wallet-signed event.
WALLET_ACTIONS = {
    "Account.SettingsChanged": "settings",
    "ApiKey.Created": "create",
    "ApiKey.LimitsChanged": "update",
    "ApiKey.Revoked": "revoke",
    "ApiKey.Rolled": "rotate",
}
_FIELDS = {
    _W: ("wallet", "message", "signature"),
    _S: ("wallet", "message", "signature"),
    _O: ("operator", "signature"),
    _ST: ("event",),
    _P: ("method", "reference"),
}


class Authorization(Protocol):
    """Whatever allowed a command, able to say so in the event it writes."""

    def evidence(
        self, event: str, aggregate_id: UUID, version: int, fields: Mapping[str, Any]
    ) -> Evidence: ...


@dataclass(frozen=True)
class Presented:
    """Evidence that arrived with the request (a wallet signature, a Stripe event, a payment)."""

    kind: EvidenceKind
    values: tuple[tuple[str, str], ...]

    def evidence(
        self, event: str, aggregate_id: UUID, version: int, fields: Mapping[str, Any]
    ) -> Evidence:
        return self.as_dict()

    def as_dict(self) -> Evidence:
        return {"kind": self.kind.value, **dict(self.values)}


def wallet_signed(wallet: str, message: str, signature: str) -> Presented:
    return Presented(
        _W, (("wallet", wallet.lower()), ("message", message), ("signature", signature))
    )


def siwe_signed(wallet: str, message: str, signature: str) -> Presented:
    return Presented(
        _S, (("wallet", wallet.lower()), ("message", message), ("signature", signature))
    )


def stripe_event(event_id: str) -> Presented:
    return Presented(_ST, (("event", event_id),))


def mpp_payment(method: str, reference: str) -> Presented:
    return Presented(_P, (("method", method), ("reference", reference)))


def operator_statement(
    event: str, aggregate_id: UUID | str, version: int, fields: Mapping[str, Any]
) -> str:
    """The exact text an operator key signs: canonical JSON of everything the event records."""
    body = json.dumps(
        {"event": event, "aggregate": str(aggregate_id), "version": version, **fields},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return f"{OPERATOR_STATEMENT_PREFIX}\n{body}"


Recover = Callable[[str, str], str]  # (EIP-191 message, signature) -> lower-case address


@dataclass(frozen=True)
class RecordedEvent:
    """What the evidence rules read of one decoded event."""

    name: str  # "ApiKey.Created"
    aggregate_id: UUID
    version: int
    timestamp: datetime
    fields: Mapping[str, Any]  # the event's own fields, evidence excluded
    evidence: Mapping[str, Any] | None


def evidence_problem(
    recorded: RecordedEvent,
    *,
    recover: Recover,
    operators: tuple[str, ...],
    owner: str | None,
    key_aggregate: Callable[[str], UUID],
) -> str | None:
    """Why this event's evidence does not authorize it, or None. `owner`: the wallet the
    event acts for (the key's or the account's wallet; None when unknown). `operators`: the
    trusted operator addresses (empty: any operator signature that recovers is accepted and
    the caller reports the signer). Only rules of the event alone; replay across events
    (a nonce used twice) is the caller's, since it needs history."""
    allowed = REQUIRED.get(recorded.name)
    if allowed is None:
        return None
    evidence = recorded.evidence
    if not evidence:
        return f"{recorded.name} carries no authorization evidence"
    kind = evidence.get("kind")
    if kind not in allowed:
        kinds = " or ".join(allowed)
        return f"{recorded.name} needs {kinds} evidence, not {kind!r}"
    missing = [name for name in _FIELDS[EvidenceKind(kind)] if not evidence.get(name)]
    if missing or any(not isinstance(value, str) for value in evidence.values()):
        return f"{kind} evidence is incomplete ({', '.join(missing) or 'non-text values'})"
    if kind in (_W, _S):
        return _signed_by_wallet(recorded, evidence, recover, owner, key_aggregate)
    if kind == _O:
        return _signed_by_operator(recorded, evidence, recover, operators)
    if kind == _ST and not str(evidence["event"]).startswith("evt_"):
        return f"stripe evidence {evidence['event']!r} is not a Stripe event id"
    return None


def _recovered(evidence: Mapping[str, Any], message: str, recover: Recover) -> str | None:
    try:
        return recover(message, str(evidence["signature"]))
    except WalletAuthError:
        return None


def _signed_by_wallet(
    recorded: RecordedEvent,
    evidence: Mapping[str, Any],
    recover: Recover,
    owner: str | None,
    key_aggregate: Callable[[str], UUID],
) -> str | None:
    wallet = str(evidence["wallet"]).lower()
    message = str(evidence["message"])
    signer = _recovered(evidence, message, recover)
    if signer != wallet:
        return f"the signature was not made by {wallet}"
    if owner is not None and wallet != owner.lower():
        return f"signed by {wallet}, but the event acts for {owner.lower()}"
    if evidence["kind"] == _S:
        return None  # an EIP-4361 consent: its statement names the authorization request
    try:
        parsed = parse_wallet_message(message)
    except WalletAuthError as exc:
        return f"the signed message is not a management message: {exc.message}"
    action = WALLET_ACTIONS[recorded.name]
    if parsed.action != action:
        return f"the wallet signed action={parsed.action}, not action={action}"
    acts_on_key = recorded.name in ("ApiKey.LimitsChanged", "ApiKey.Revoked", "ApiKey.Rolled")
    if acts_on_key and key_aggregate(parsed.key_id) != recorded.aggregate_id:
        return f"the wallet signed for key {parsed.key_id!r}, not this key"
    if abs(recorded.timestamp - parsed.ts) > EVENT_WINDOW:
        return f"the message was signed at {parsed.ts.isoformat()}, too far from the event"
    return None


def _signed_by_operator(
    recorded: RecordedEvent,
    evidence: Mapping[str, Any],
    recover: Recover,
    operators: tuple[str, ...],
) -> str | None:
    operator = str(evidence["operator"]).lower()
    statement = operator_statement(
        recorded.name, recorded.aggregate_id, recorded.version, recorded.fields
    )
    signer = _recovered(evidence, statement, recover)
    if signer != operator:
        return f"the operator signature does not cover this event as recorded (not {operator}'s)"
    if operators and operator not in operators:
        return f"signed by {operator}, which is not an operator key ({', '.join(operators)})"
    return None


def nonce_of(evidence: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """(wallet, nonce) of a wallet-signed management message: each authorizes one event."""
    if not evidence or evidence.get("kind") != _W:
        return None
    try:
        parsed = parse_wallet_message(str(evidence.get("message", "")))
    except WalletAuthError:
        return None
    return str(evidence.get("wallet", "")).lower(), parsed.nonce
