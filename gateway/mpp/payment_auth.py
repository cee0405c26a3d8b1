"""The "Payment" HTTP authentication scheme (draft-httpauth-payment-00), server side.

pympp's core does the wire formats: `Challenge.create` binds the id with the draft's
HMAC-SHA256 over the seven slots (realm|method|intent|request|expires|digest|opaque, the
request JCS-serialized then base64url), renders `WWW-Authenticate`, parses credentials and
writes receipts. What is ours, because pympp's engine does not do it to the draft (its
pre-verification failures all say `payment-required`, its digest lacks RFC 9530's colons, it
decodes base64 leniently): the strict checks below, each failing with the draft's problem type.

`opaque` carries the path the challenge was issued for and a random nonce, so every challenge
is unique and none can be spent on another resource; the HMAC covers both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mpp import Challenge, Credential, Receipt, generate_challenge_id
from mpp._canonical import canonical_b64url  # the exact JCS + base64url the id is bound to
from mpp._parsing import ParseError  # raised by Credential.from_authorization

from gateway.mpp.problems import PaymentProblem

CHALLENGE_TTL = timedelta(minutes=5)
MAX_CREDENTIAL_CHARS = 16_384  # the draft asks servers to take at least 4 KB
_CREDENTIAL = re.compile(r"^Payment +([A-Za-z0-9_-]+)$")


@dataclass(frozen=True)
class Offer:
    """One way to pay for a resource: a method, an intent and the method's request."""

    method: str
    intent: str
    request: dict[str, Any]
    description: str


@dataclass(frozen=True)
class PresentedCredential:
    """A credential whose challenge this server issued, unaltered, for this resource."""

    credential: Credential
    challenge_id: str
    request: dict[str, Any]
    expired: bool

    @property
    def payload(self) -> dict[str, Any]:
        return self.credential.payload

    @property
    def source(self) -> str | None:
        return self.credential.source


def content_digest(body: bytes) -> str:
    """RFC 9530 `Content-Digest` value of `body`: `sha-256=:<base64>:`."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError("a number beyond the float range")
    return number


def _decode_object(value: str, what: str) -> dict[str, Any]:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", value):
        raise PaymentProblem("malformed-credential", f"{what} is not base64url without padding")
    try:
        decoded = json.loads(
            base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)),
            parse_constant=_no_constant,
            parse_float=_finite,
        )
    except (binascii.Error, ValueError, RecursionError):
        raise PaymentProblem("malformed-credential", f"{what} is not base64url JSON") from None
    if not isinstance(decoded, dict):
        raise PaymentProblem("malformed-credential", f"{what} is not a JSON object")
    return decoded


class PaymentAuth:
    def __init__(self, secret: str, realm: str, ttl: timedelta = CHALLENGE_TTL) -> None:
        self._secret = secret
        self.realm = realm
        self._ttl = ttl

    def issue(
        self, offer: Offer, path: str, body: bytes | None, now: datetime | None = None
    ) -> Challenge:
        """A fresh challenge for `offer` on `path`; `body` binds it to that request body."""
        now = now or datetime.now(UTC)
        return Challenge.create(
            secret_key=self._secret,
            realm=self.realm,
            method=offer.method,
            intent=offer.intent,
            request=offer.request,
            expires=_rfc3339(now + self._ttl),
            digest=content_digest(body) if body is not None else None,
            description=offer.description,
            meta={"path": path, "nonce": secrets.token_hex(16)},
        )

    def header(self, challenge: Challenge) -> str:
        return challenge.to_www_authenticate(self.realm)

    def read(
        self,
        authorization: str,
        *,
        path: str,
        offers: list[Offer],
        body: bytes | None,
        now: datetime | None = None,
    ) -> PresentedCredential:
        """Parse and authenticate a credential for `path`. Raises PaymentProblem:
        malformed-credential (syntax), invalid-challenge (not ours, altered, for another
        resource or body, or an offer this resource does not make). Expiry is reported on the
        result: a charge refuses it, a running session's vouchers need not."""
        now = now or datetime.now(UTC)
        value = authorization.strip()
        if len(value) > MAX_CREDENTIAL_CHARS:
            raise PaymentProblem("malformed-credential", "the credential is too long")
        if value.lower().count("payment ") > 1:
            raise PaymentProblem("bad-request", "send exactly one Payment credential", status=400)
        match = _CREDENTIAL.match(value)
        if match is None:
            raise PaymentProblem(
                "malformed-credential", "expected `Payment <base64url credential>`"
            )
        _decode_object(match[1], "the credential")  # strict alphabet and JSON before pympp
        try:
            credential = Credential.from_authorization(value)
        except (ParseError, ValueError, TypeError, RecursionError) as exc:
            raise PaymentProblem("malformed-credential", str(exc)) from None
        if not isinstance(credential.payload, dict):
            raise PaymentProblem("malformed-credential", "the payload is not a JSON object")
        echo = credential.challenge
        request = _decode_object(echo.request, "challenge.request")
        opaque_raw = _decode_object(echo.opaque, "challenge.opaque") if echo.opaque else None
        if opaque_raw is not None and not all(isinstance(v, str) for v in opaque_raw.values()):
            raise PaymentProblem("malformed-credential", "challenge.opaque is not a string map")
        opaque: dict[str, str] | None = opaque_raw
        try:
            expected = generate_challenge_id(
                secret_key=self._secret,
                realm=echo.realm,
                method=echo.method,
                intent=echo.intent,
                request=request,
                expires=echo.expires,
                digest=echo.digest,
                opaque=opaque,
            )
            wire_exact = canonical_b64url(request) == echo.request and (
                opaque is None or canonical_b64url(opaque) == echo.opaque
            )
        except Exception:  # rfc8785 refuses lone surrogates and the like in its own types
            raise PaymentProblem("malformed-credential", "the challenge is not JCS JSON") from None
        if not (secrets.compare_digest(expected, echo.id) and wire_exact):
            raise PaymentProblem(
                "invalid-challenge", "this challenge was not issued here, or it was altered"
            )
        if echo.realm != self.realm or (opaque or {}).get("path") != path:
            raise PaymentProblem("invalid-challenge", "this challenge is for another resource")
        if not any((o.method, o.intent) == (echo.method, echo.intent) for o in offers):
            raise PaymentProblem(
                "invalid-challenge", f"{echo.method}/{echo.intent} is not offered here"
            )
        if echo.digest is not None and (body is None or content_digest(body) != echo.digest):
            raise PaymentProblem(
                "invalid-challenge", "the request body is not the one this challenge was for"
            )
        try:
            expires = datetime.fromisoformat(echo.expires) if echo.expires else None
        except ValueError:
            raise PaymentProblem(
                "malformed-credential", "challenge.expires is not RFC 3339"
            ) from None
        expired = expires is None or expires.tzinfo is None or expires <= now
        return PresentedCredential(credential, echo.id, request, expired)

    def receipt(self, reference: str, method: str = "tempo", **fields: Any) -> str:
        """A `Payment-Receipt` value (status success); `fields` are method-specific."""
        return Receipt(
            status="success",
            timestamp=datetime.now(UTC).replace(microsecond=0),
            reference=reference,
            method=method,
            extensions=fields or None,
        ).to_payment_receipt()
