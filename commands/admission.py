"""Admission: the one atomic step between "request parsed" and "upstream called".

In order: the key is active and not expired, the model is allowed, the request id is new, RPM
and TPM (sliding 60 s windows of 1 s buckets, shared by every API instance), the key's monthly
budget, and finally `available credit >= hold`. If all pass, the hold is recorded in the read
model (the same OpenHold the projector later applies for its Placed event) and the request and
its estimated tokens are counted. Doing it in one step (a Redis Lua script, or one uninterrupted
Python call in memory) is what makes overspend impossible under any concurrency.

`precheck` runs the same checks earlier and cheaper, before a request's expensive work (PII
redaction, fetches, OCR), with a floor instead of the exact hold: a key that is revoked, over
its RPM, or whose wallet cannot afford even the prompt's text is refused before any of that
work, and the request is counted against RPM there (the final admission then does not count it
again). Nothing is held by a precheck.

Revocation marks: a revoked key's id is recorded here by the DELETE that revokes it, and both
steps refuse a marked key, so a revocation takes effect on every instance at once, even while
the projector that updates the key index is down.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from projections.ops import CloseHold, OpenHold

WINDOW_SECONDS = 60


class Verdict(StrEnum):
    ADMITTED = "admitted"
    UNKNOWN_KEY = "unknown_key"
    INACTIVE = "inactive"  # revoked or expired
    MODEL_NOT_ALLOWED = "model_not_allowed"
    DUPLICATE = "duplicate"  # a hold with this id is open right now
    RPM = "rpm"
    TPM = "tpm"
    BUDGET = "budget"
    CREDITS = "credits"
    REBUILDING = "rebuilding"  # read models are being replayed: balances are not final yet


@dataclass(frozen=True)
class AdmissionRequest:
    """Everything admission reads is named by its read-model key, so gates know no key layout."""

    key_id: str
    key_record_key: str  # keys projection: status, expires_epoch, models
    limits_key: str  # ratelimit_config projection: rpm, tpm, monthly_budget_micros
    spend_key: str  # usage projection: this month's settled spend of the key
    key_held_key: str  # balance projection: credit held by the key's open requests
    balance_key: str  # balance projection: credited, debited, held
    model: str  # "" skips the entitlement check (platform features such as the PII preview)
    hold: OpenHold
    estimated_tokens: int
    now_ms: int
    default_rpm: int
    default_tpm: int
    count_request: bool = True  # False: a precheck already counted it against RPM
    # The HMAC of the secret presented ("" for keys Pryv meters itself, never presented):
    # after a roll, the key record's previous secret is admitted only until its grace ends.
    secret_hash: str = ""

    @property
    def now_s(self) -> int:
        return self.now_ms // 1000


@dataclass(frozen=True)
class RateState:
    """What the X-RateLimit-* headers report, after this request was counted (if admitted)."""

    limit: int
    remaining: int
    reset_seconds: int


@dataclass(frozen=True)
class Admission:
    verdict: Verdict
    rpm: RateState | None = None
    tpm: RateState | None = None
    retry_after_seconds: int | None = None
    available_micros: int | None = None

    @property
    def admitted(self) -> bool:
        return self.verdict is Verdict.ADMITTED


class AdmissionGate(Protocol):
    async def admit(self, request: AdmissionRequest) -> Admission: ...

    async def precheck(self, request: AdmissionRequest) -> Admission:
        """The admission checks with `request.hold` as a floor: nothing is held, the request is
        counted against RPM (and TPM is checked, not counted)."""
        ...

    async def mark_revoked(self, key_id: str) -> None:
        """Refuse `key_id` from now on, whatever the key index says."""
        ...

    async def is_revoked(self, key_id: str) -> bool: ...

    async def release(self, close: CloseHold) -> None:
        """Undo an admission whose hold never became durable (store down, duplicate id)."""
        ...

    async def correct_tokens(self, key_id: str, admitted_at_s: int, delta: int) -> None:
        """Replace the estimated tokens counted at admission by the actual ones (delta)."""
        ...


def retry_after(buckets: dict[int, int], now_s: int, excess: int) -> int:
    """Seconds until at least `excess` units have left the window (oldest buckets go first)."""
    freed = 0
    for second in sorted(buckets):
        freed += buckets[second]
        if freed >= excess:
            return max(second + WINDOW_SECONDS - now_s, 1)
    return WINDOW_SECONDS


def reset_seconds(buckets: dict[int, int], now_s: int) -> int:
    """Seconds until every unit counted now has left the window (the window fully resets)."""
    live = [s for s, v in buckets.items() if v > 0]
    return max(max(live) + WINDOW_SECONDS - now_s, 0) if live else 0
