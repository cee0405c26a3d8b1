"""Wallet-signed management auth: who signed, for which action and key, fresh and never replayed.

The three fields (walletAddress, message, signature) may come in the JSON body (preferred, per the
seed), in X-Wallet-Address / X-Wallet-Message / X-Wallet-Signature headers, or as query parameters
on GET. Checks run cheapest-first, and the nonce is claimed last so that a bad request by someone
else can never burn a wallet's nonce.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.errors import ApiError
from commands.call_limits import CallLimiter
from domain.evidence import Presented, wallet_signed
from domain.wallet_messages import (
    WalletAction,
    WalletAuthCode,
    WalletAuthError,
    check_wallet_message,
    parse_wallet_message,
)
from infra.nonces import NonceStore
from infra.wallet_signatures import verify_signer


class WalletFields(BaseModel):
    """The signed-message fields every management body carries."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    wallet_address: str | None = Field(default=None, alias="walletAddress", max_length=64)
    message: str | None = Field(default=None, max_length=512)
    signature: str | None = Field(default=None, max_length=200)


@dataclass(frozen=True)
class WalletIdentity:
    wallet: str  # lower-case 0x address
    nonce: str
    evidence: Presented  # the signed message and signature, recorded in the event it allows


_SOURCES = (
    ("x-wallet-address", "x-wallet-message", "x-wallet-signature"),
    ("walletAddress", "message", "signature"),
)


def wallet_fields_from_request(request: Request, body: WalletFields | None) -> WalletFields:
    if body is not None and (body.wallet_address or body.message or body.signature):
        return body
    headers = request.headers
    source: Mapping[str, str]
    if any(name in headers for name in _SOURCES[0]):
        names, source = _SOURCES[0], headers
    else:
        names, source = _SOURCES[1], request.query_params
    address, message, signature = (source.get(name) for name in names)
    try:
        return WalletFields(walletAddress=address, message=message, signature=signature)
    except ValidationError as exc:  # over-long values: the client's mistake, never a 500
        first = exc.errors()[0]
        field = {"walletAddress": 0, "message": 1, "signature": 2}.get(str(first["loc"][0]), 0)
        raise ApiError(
            400, "validation_error", f"{names[field]}: {first['msg']}", param=names[field]
        ) from exc


async def authenticate_wallet(
    fields: WalletFields,
    *,
    action: WalletAction,
    key_id: str,
    nonces: NonceStore,
    now: datetime | None = None,
    limiter: CallLimiter | None = None,
    per_minute: int = 0,
) -> WalletIdentity:
    """The verified signer of this call. With `limiter`, a wallet gets `per_minute` signed
    calls a minute (counted after the signature checks, so nobody can spend another wallet's
    allowance): beyond, 429 `rate_limit_exceeded` with Retry-After."""
    if not (fields.wallet_address and fields.message and fields.signature):
        raise ApiError(
            401,
            "missing_wallet_auth",
            "wallet-signed request required: walletAddress, message and signature",
        )
    now = now or datetime.now(UTC)
    try:
        message = parse_wallet_message(fields.message)
        wallet = verify_signer(fields.message, fields.signature, fields.wallet_address)
        check_wallet_message(message, action=action, key_id=key_id, now=now)
        if not await nonces.claim(wallet, message.nonce, now):
            raise WalletAuthError(WalletAuthCode.NONCE_REPLAY, "nonce already used")
    except WalletAuthError as exc:
        raise ApiError(403, exc.code, exc.message) from exc
    if limiter is not None:
        wait = await limiter.hit(
            f"wallet:{wallet}", limit=per_minute, window_seconds=60, now_s=int(now.timestamp())
        )
        if wait is not None:
            raise ApiError(
                429,
                "rate_limit_exceeded",
                f"more than {per_minute} management calls a minute from this wallet; "
                f"retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
    evidence = wallet_signed(wallet, fields.message, fields.signature)
    return WalletIdentity(wallet=wallet, nonce=message.nonce, evidence=evidence)
