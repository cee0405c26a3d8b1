"""An admission's verdict as the caller sees it: a PryvError with the rate-limit figures."""

from __future__ import annotations

from commands.admission import Admission, Verdict
from domain.errors import ErrorKind, PryvError

_REFUSALS: dict[Verdict, tuple[ErrorKind, str, str]] = {
    # The key authenticated (its identity is known), yet the key index lacks it: the index is
    # being rebuilt. Not 401 — SDKs treat that as final.
    Verdict.UNKNOWN_KEY: (
        ErrorKind.UNAVAILABLE,
        "read_models_rebuilding",
        "the key index is being rebuilt after a storage failure; retry shortly",
    ),
    Verdict.INACTIVE: (
        ErrorKind.AUTHENTICATION,
        "inactive_api_key",
        "this API key is revoked or expired",
    ),
    Verdict.MODEL_NOT_ALLOWED: (
        ErrorKind.PERMISSION,
        "model_not_allowed",
        "this API key is not entitled to this model",
    ),
    Verdict.DUPLICATE: (
        ErrorKind.CONFLICT,
        "duplicate_request_id",
        "this X-Request-Id was already used on this key",
    ),
    Verdict.RPM: (
        ErrorKind.RATE_LIMITED,
        "rate_limit_exceeded_rpm",
        "requests-per-minute limit reached",
    ),
    Verdict.TPM: (
        ErrorKind.RATE_LIMITED,
        "rate_limit_exceeded_tpm",
        "tokens-per-minute limit reached",
    ),
    Verdict.BUDGET: (
        ErrorKind.PAYMENT_REQUIRED,
        "budget_exceeded",
        "this key's monthly budget is used up",
    ),
    Verdict.REBUILDING: (
        ErrorKind.UNAVAILABLE,
        "read_models_rebuilding",
        "balances are being rebuilt after a storage failure; retry shortly",
    ),
    Verdict.CREDITS: (
        ErrorKind.PAYMENT_REQUIRED,
        "insufficient_credits",
        "not enough credits for this request; add credits in Billing",
    ),
}


def rate_metadata(admission: Admission) -> dict[str, str]:
    """The key's RPM/TPM limit, remaining and reset (OpenAI's X-RateLimit-* headers)."""
    out: dict[str, str] = {}
    for name, state in (("RPM", admission.rpm), ("TPM", admission.tpm)):
        if state is not None:
            out[f"X-RateLimit-Limit-{name}"] = str(state.limit)
            out[f"X-RateLimit-Remaining-{name}"] = str(state.remaining)
            out[f"X-RateLimit-Reset-{name}"] = str(state.reset_seconds)
    if admission.retry_after_seconds is not None:
        out["Retry-After"] = str(admission.retry_after_seconds)
    return out


def refusal(admission: Admission, request_id: str) -> PryvError:
    """Why `admission` was refused, for the caller."""
    kind, code, message = _REFUSALS[admission.verdict]
    metadata = {**rate_metadata(admission), "X-Request-Id": request_id}
    if kind is ErrorKind.UNAVAILABLE:
        metadata.setdefault("Retry-After", "1")
    return PryvError(message, code=code, kind=kind, metadata=metadata)
