"""API key format and secret hashing.

A key looks like ``pryv_live_<key id, 16>_<secret, 43><checksum, 6>``:
- the key id is public (shown in lists, used in URLs and wallet messages);
- the secret is 43 base62 characters, i.e. 256 bits from ``secrets``;
- the checksum is CRC32 of everything before it, so typos and truncated pastes are rejected
  without a read-model lookup, and secret scanners can validate candidates offline.
Only HMAC-SHA256(pepper, token) is ever stored.
"""

from __future__ import annotations

import hmac
import secrets
import zlib
from dataclasses import dataclass
from hashlib import sha256
from typing import Literal, get_args

from domain.errors import ErrorKind, PryvError

KeyEnv = Literal["live", "test"]
KEY_ENVS: tuple[KeyEnv, ...] = get_args(KeyEnv)

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
KEY_ID_LENGTH = 16
SECRET_LENGTH = 43  # 62**43 > 2**256
CHECKSUM_LENGTH = 6  # 62**6 > 2**32
# Limits of a key created without its own (OpenAI-like tier-1 figures).
DEFAULT_RPM = 600
DEFAULT_TPM = 2_000_000


class MalformedApiKey(PryvError, ValueError):
    """The string is not a Pryv key: wrong prefix, length, alphabet or checksum."""

    kind, code = ErrorKind.AUTHENTICATION, "invalid_api_key"


@dataclass(frozen=True)
class ParsedApiKey:
    env: KeyEnv
    key_id: str
    token: str

    @property
    def prefix(self) -> str:
        """The part of the key safe to display: env and public id."""
        return f"pryv_{self.env}_{self.key_id}"

    @property
    def last4(self) -> str:
        return self.token[-4:]


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        digits.append(BASE62[rem])
    return "".join(reversed(digits))


def _random_base62(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def new_key_id() -> str:
    return _random_base62(KEY_ID_LENGTH)


def issue_api_key(env: KeyEnv, key_id: str | None = None) -> ParsedApiKey:
    """Mint a fresh key. The returned token is shown to the user once and never stored."""
    if env not in KEY_ENVS:
        raise MalformedApiKey(f"unknown key environment {env!r}")
    kid = key_id or new_key_id()
    body = f"pryv_{env}_{kid}_{_random_base62(SECRET_LENGTH)}"
    return ParsedApiKey(env=env, key_id=kid, token=body + _checksum(body))


def parse_api_key(token: str) -> ParsedApiKey:
    """Validate shape and checksum; raise MalformedApiKey otherwise."""
    parts = token.split("_")
    if len(parts) != 4 or parts[0] != "pryv" or parts[1] not in KEY_ENVS:
        raise MalformedApiKey("not a pryv_live_ or pryv_test_ key")
    env, key_id, tail = parts[1], parts[2], parts[3]
    if len(key_id) != KEY_ID_LENGTH or len(tail) != SECRET_LENGTH + CHECKSUM_LENGTH:
        raise MalformedApiKey("wrong key length")
    if any(c not in BASE62 for c in key_id + tail):
        raise MalformedApiKey("unexpected character in key")
    body, checksum = token[:-CHECKSUM_LENGTH], token[-CHECKSUM_LENGTH:]
    if not hmac.compare_digest(_checksum(body), checksum):
        raise MalformedApiKey("checksum mismatch")
    return ParsedApiKey(env=env, key_id=key_id, token=token)


def hash_api_key(pepper: bytes, token: str) -> str:
    """HMAC-SHA256 with a server-side pepper: a leaked read model does not let anyone test keys."""
    return hmac.new(pepper, token.encode("ascii"), sha256).hexdigest()


def is_valid_key_id(value: str) -> bool:
    return len(value) == KEY_ID_LENGTH and all(c in BASE62 for c in value)


def derived_key_id(secret: bytes, label: str) -> str:
    """A key id that is always the same for `label` (e.g. a wallet's MPP key) and that nobody
    without `secret` can predict."""
    digest = hmac.new(secret, label.encode("utf-8"), sha256).digest()
    return _base62(int.from_bytes(digest, "big"), KEY_ID_LENGTH)
