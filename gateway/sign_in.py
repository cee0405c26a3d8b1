"""Sign-in: nonces the dashboard issued, and the full check of a signed EIP-4361 message.

Nonces are stateless to issue and durable to consume: `GET /auth/nonce` hands out
`<24 hex random><8 hex issued-at epoch><32 hex HMAC>`, so only nonces this deployment minted
(and at most 10 minutes ago) are accepted, with no table written per page view; the login then
claims the nonce once in the platform's durable NonceStore (the same table as the management
API's nonces, under a wallet-independent namespace), so a signed message cannot sign in twice,
not even after a restart, nor on another dashboard process sharing the key pepper.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.siwe import LoginPolicy, SiweCode, SiweError, check_siwe_message, parse_siwe_message
from domain.wallet_messages import WalletAuthError
from infra.nonces import NONCE_TTL, NonceStore
from infra.wallet_signatures import recover_signer

NONCE_LIFETIME = timedelta(minutes=10)
NONCE_NAMESPACE = "siwe-login"  # the NonceStore's "wallet" column for sign-in nonces
_RANDOM_HEX, _EPOCH_HEX, _MAC_HEX = 24, 8, 32

assert NONCE_TTL > NONCE_LIFETIME, "a claimed nonce must outlive the time it is accepted"


def nonce_secret(pepper: bytes) -> bytes:
    """A key for nonce MACs, derived from the deployment's key pepper (domain-separated), or a
    random per-process key when there is no pepper."""
    if not pepper:
        return secrets.token_bytes(32)
    return hmac.new(pepper, b"pryv-dashboard-siwe-nonce-v1", hashlib.sha256).digest()


@dataclass(frozen=True)
class IssuedNonce:
    nonce: str
    issued_at: datetime
    expires_at: datetime


class LoginNonces:
    def __init__(self, secret: bytes, lifetime: timedelta = NONCE_LIFETIME) -> None:
        self._secret = secret
        self.lifetime = lifetime

    def _mac(self, body: str) -> str:
        digest = hmac.new(self._secret, body.encode(), hashlib.sha256).hexdigest()
        return digest[:_MAC_HEX]

    def issue(self, now: datetime) -> IssuedNonce:
        body = secrets.token_hex(_RANDOM_HEX // 2) + f"{int(now.timestamp()):0{_EPOCH_HEX}x}"
        issued = datetime.fromtimestamp(int(now.timestamp()), UTC)
        return IssuedNonce(body + self._mac(body), issued, issued + self.lifetime)

    def check(self, nonce: str, now: datetime) -> None:
        """NONCE_INVALID unless this deployment issued `nonce` within its lifetime."""
        size = _RANDOM_HEX + _EPOCH_HEX
        if len(nonce) != size + _MAC_HEX or not all(c in "0123456789abcdef" for c in nonce):
            raise SiweError(SiweCode.NONCE_INVALID, "unknown nonce: get one from /auth/nonce")
        body, mac = nonce[:size], nonce[size:]
        if not hmac.compare_digest(mac, self._mac(body)):
            raise SiweError(SiweCode.NONCE_INVALID, "unknown nonce: get one from /auth/nonce")
        issued = datetime.fromtimestamp(int(body[_RANDOM_HEX:], 16), UTC)
        if not issued - timedelta(minutes=1) <= now <= issued + self.lifetime:
            raise SiweError(SiweCode.NONCE_INVALID, "nonce expired: sign in again")


async def verify_login(
    text: str,
    signature: str,
    *,
    policy: LoginPolicy,
    nonces: LoginNonces,
    store: NonceStore,
    now: datetime,
) -> str:
    """The lower-case wallet that signed a valid, fresh, first-use sign-in message for this
    dashboard, or SiweError. Cheapest checks first; the nonce is claimed last, so a forged
    request can never burn someone's nonce."""
    message = parse_siwe_message(text)
    check_siwe_message(message, policy, now)
    nonces.check(message.nonce, now)
    try:
        signer = recover_signer(text, signature)
    except WalletAuthError as exc:
        raise SiweError(SiweCode.SIGNATURE_VERIFY_ERROR, exc.message) from exc
    wallet = message.address.lower()
    if signer != wallet:
        raise SiweError(SiweCode.SIGNATURE_INVALID, f"signature was not made by {message.address}")
    if not await store.claim(NONCE_NAMESPACE, message.nonce, now):
        raise SiweError(SiweCode.NONCE_REPLAY, "this sign-in message was already used")
    return wallet
