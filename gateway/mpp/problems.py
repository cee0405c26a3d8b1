"""The Payment scheme's problem types (RFC 9457 bodies) as a PryvError the doors render.

Core types (draft-httpauth-payment, "Error Codes") and the session draft's
(`session/...`). A 402 always travels with fresh challenges (`challenges`, set by the
service that knows the route); a 403 means the payment was valid but the request is refused.
"""

from __future__ import annotations

from typing import Any

from domain.errors import ErrorKind, PryvError

PROBLEM_BASE = "https://paymentauth.org/problems/"

TITLES = {
    "payment-required": "Payment Required",
    "payment-insufficient": "Payment Insufficient",
    "payment-expired": "Payment Expired",
    "verification-failed": "Payment Verification Failed",
    "method-unsupported": "Method Unsupported",
    "malformed-credential": "Malformed Credential",
    "invalid-challenge": "Invalid Challenge",
    "payment-refused": "Payment Accepted, Request Refused",
    "bad-request": "Bad Request",
    "session/invalid-signature": "Invalid Signature",
    "session/signer-mismatch": "Signer Mismatch",
    "session/amount-exceeds-deposit": "Amount Exceeds Deposit",
    "session/delta-too-small": "Delta Too Small",
    "session/channel-not-found": "Channel Not Found",
    "session/channel-finalized": "Channel Finalized",
    "session/challenge-not-found": "Challenge Not Found",
    "session/insufficient-balance": "Insufficient Balance",
}

_KINDS = {
    400: ErrorKind.INVALID_REQUEST,
    402: ErrorKind.PAYMENT_REQUIRED,
    403: ErrorKind.PERMISSION,
    410: ErrorKind.NOT_FOUND,
    503: ErrorKind.UNAVAILABLE,
}


class PaymentProblem(PryvError):
    """A payment failure with its problem type; `challenges` are WWW-Authenticate values."""

    def __init__(
        self,
        slug: str,
        detail: str,
        *,
        status: int = 402,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail, code=slug.replace("/", "_").replace("-", "_"), kind=_KINDS[status])
        self.slug = slug
        self.status = status
        self.extra = dict(extra or {})
        self.challenges: list[str] = []
        self.challenge_id: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": TITLES.get(self.slug, self.slug),
            "status": self.status,
            "detail": self.message,
            **self.extra,
        }
        if self.challenge_id is not None:
            body["challengeId"] = self.challenge_id
        return body
