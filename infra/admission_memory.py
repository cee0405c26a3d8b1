"""Admission for the embedded default: the same decisions as the Redis script, over memory.

Atomic because it never awaits between reading and writing: on one event loop no other
coroutine can run in between. Rate windows live here (they are not projections).
"""

from __future__ import annotations

import json
from collections import defaultdict

from commands.admission import (
    WINDOW_SECONDS,
    Admission,
    AdmissionRequest,
    RateState,
    Verdict,
    reset_seconds,
    retry_after,
)
from infra.read_store_memory import MemoryReadStore
from projections.ops import CloseHold


def _int(fields: dict[str, str], name: str, default: int = 0) -> int:
    raw = fields.get(name, "")
    return int(raw) if raw else default


def _state(limit: int, buckets: dict[int, int], now_s: int) -> RateState:
    return RateState(limit, max(limit - sum(buckets.values()), 0), reset_seconds(buckets, now_s))


class MemoryAdmission:
    def __init__(self, store: MemoryReadStore) -> None:
        self._store = store
        self._windows: dict[str, dict[int, int]] = defaultdict(dict)
        self._revoked: set[str] = set()

    def _window(self, name: str, now_s: int) -> dict[int, int]:
        buckets = self._windows[name]
        for second in [s for s in buckets if s <= now_s - WINDOW_SECONDS]:
            del buckets[second]
        return buckets

    async def admit(self, request: AdmissionRequest) -> Admission:
        return self._decide(request, precheck=False)

    async def precheck(self, request: AdmissionRequest) -> Admission:
        return self._decide(request, precheck=True)

    async def mark_revoked(self, key_id: str) -> None:
        self._revoked.add(key_id)

    async def is_revoked(self, key_id: str) -> bool:
        return key_id in self._revoked

    def _decide(self, request: AdmissionRequest, *, precheck: bool) -> Admission:
        store, now_s = self._store, request.now_s
        if store.fence:
            balance_at = int(store.read_fields("pos:balance").get("position", 0))
            if balance_at < store.fence:
                return Admission(Verdict.REBUILDING, retry_after_seconds=1)
            store.fence = 0
        key = store.read_fields(request.key_record_key)
        if not key:
            return Admission(Verdict.UNKNOWN_KEY)
        expires = _int(key, "expires_epoch", 0)
        if key.get("status") != "active" or (expires and expires <= now_s):
            return Admission(Verdict.INACTIVE)
        if request.key_id in self._revoked:
            return Admission(Verdict.INACTIVE)
        presented = request.secret_hash
        if presented and presented != key.get("secret_hash", presented):
            grace_ends = _int(key, "previous_expires_epoch", 0)
            if presented != key.get("previous_hash") or grace_ends <= now_s:
                return Admission(Verdict.INACTIVE)  # a rolled-over secret past its grace
        # From here on the key is known: every answer carries its rate-limit state.
        limits = store.read_fields(request.limits_key)
        rpm_limit = _int(limits, "rpm", request.default_rpm)
        tpm_limit = _int(limits, "tpm", request.default_tpm)
        rpm = self._window(f"{request.key_id}:rpm", now_s)
        tpm = self._window(f"{request.key_id}:tpm", now_s)

        def refused(verdict: Verdict, wait: int | None = None, **extra: int) -> Admission:
            return Admission(
                verdict, _state(rpm_limit, rpm, now_s), _state(tpm_limit, tpm, now_s), wait, **extra
            )

        allowed = json.loads(key.get("models") or "[]")
        if allowed and request.model and request.model not in allowed:
            return refused(Verdict.MODEL_NOT_ALLOWED)
        if store.read_fields(request.hold.hold_key):
            return refused(Verdict.DUPLICATE)

        rpm_used, tpm_used = sum(rpm.values()), sum(tpm.values())
        counting = precheck or request.count_request
        if counting and rpm_used + 1 > rpm_limit:
            return refused(Verdict.RPM, retry_after(rpm, now_s, rpm_used + 1 - rpm_limit))
        if tpm_used + request.estimated_tokens > tpm_limit:
            if request.estimated_tokens > tpm_limit:  # can never fit: say so, wait a full window
                return refused(Verdict.TPM, WINDOW_SECONDS)
            excess = tpm_used + request.estimated_tokens - tpm_limit
            return refused(Verdict.TPM, retry_after(tpm, now_s, excess))

        amount = request.hold.amount
        budget = _int(limits, "monthly_budget_micros", -1)
        if budget >= 0:
            spent = _int(store.read_fields(request.spend_key), "micros")
            held = _int(store.read_fields(request.key_held_key), "held")
            if spent + held + amount > budget:
                return refused(Verdict.BUDGET)
        balance = store.read_fields(request.balance_key)
        available = _int(balance, "credited") - _int(balance, "debited") - _int(balance, "held")
        if available < amount:
            return refused(Verdict.CREDITS, available_micros=available)

        if counting:
            rpm[now_s] = rpm.get(now_s, 0) + 1
        if precheck:
            return Admission(
                Verdict.ADMITTED,
                _state(rpm_limit, rpm, now_s),
                _state(tpm_limit, tpm, now_s),
                available_micros=available,
            )
        store.apply_op(request.hold)
        tpm[now_s] = tpm.get(now_s, 0) + request.estimated_tokens
        return Admission(
            Verdict.ADMITTED,
            _state(rpm_limit, rpm, now_s),
            _state(tpm_limit, tpm, now_s),
            available_micros=available - amount,
        )

    async def release(self, close: CloseHold) -> None:
        self._store.apply_op(close)

    async def correct_tokens(self, key_id: str, admitted_at_s: int, delta: int) -> None:
        buckets = self._windows.get(f"{key_id}:tpm")
        if buckets is not None and admitted_at_s in buckets:
            buckets[admitted_at_s] = max(buckets[admitted_at_s] + delta, 0)
