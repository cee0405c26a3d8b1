"""Metering: the money path of one request (docs/architecture.md, "The request path").

1. admit: atomic admission (limits, budget, `available >= hold`) records the hold in the read
   model; then the UsageHold.Placed event is made durable (group commit) before any upstream
   call. If that append fails or collides, the admission is undone and nothing is called.
2. settle: after the upstream answered, errored or the client left, exactly one Settled event
   with the actual cost (never more than was held), and the TPM estimate is corrected.
Settlements run as tasks that survive the request's cancellation (client disconnects).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from commands.admission import Admission, AdmissionGate, AdmissionRequest, Verdict
from commands.application import PryvApplication
from commands.group_commit import GroupCommitWriter
from commands.results import CommandResult
from commands.retries import through_outage
from domain.aggregates import UsageHold
from domain.api_keys import DEFAULT_RPM, DEFAULT_TPM
from domain.catalog import ModelSpec
from domain.errors import ErrorKind, PryvError
from domain.pricing import Usage, cost_micros
from projections import balance, keys, ratelimit_config, usage

log = logging.getLogger("pryv.metering")


@dataclass(frozen=True)
class KeyIdentity:
    """The immutable facts of a key: safe to cache forever in-process."""

    key_id: str
    aggregate_id: str
    account_id: str
    env: str
    secret_hash: str = ""  # which of the key's secrets was presented ("": none, a service key)


class AdmissionRefused(PryvError):
    kind, code = ErrorKind.PAYMENT_REQUIRED, "admission_refused"

    def __init__(self, admission: Admission) -> None:
        super().__init__(admission.verdict.value)
        self.admission = admission


@dataclass
class MeteredRequest:
    key: KeyIdentity
    model: ModelSpec
    request_id: str
    hold: UsageHold
    hold_micros: int
    estimated_tokens: int
    admitted_at_s: int
    admission: Admission


@dataclass(frozen=True)
class MeteringLimits:
    default_rpm: int = DEFAULT_RPM
    default_tpm: int = DEFAULT_TPM
    hold_ttl: timedelta = timedelta(minutes=15)


class Meter:
    def __init__(
        self,
        app: PryvApplication,
        writer: GroupCommitWriter,
        gate: AdmissionGate,
        limits: MeteringLimits | None = None,
    ) -> None:
        self._app = app
        self._writer = writer
        self._gate = gate
        self._limits = limits or MeteringLimits()
        self._settlements: set[asyncio.Task[CommandResult | None]] = set()
        self.shortfalls = 0  # settlements whose cost exceeded their hold (exported as metrics)
        self.shortfall_micros = 0

    async def admit(
        self,
        key: KeyIdentity,
        model: ModelSpec,
        request_id: str,
        *,
        hold_micros: int,
        estimated_tokens: int,
        now: datetime | None = None,
        check_entitlement: bool = True,
        prechecked: bool = False,
    ) -> MeteredRequest:
        """`check_entitlement=False` for platform features a key may use whatever its model
        list (the PII preview), still metered and rate limited. `prechecked`: `precheck`
        already counted this request against RPM."""
        now = now or datetime.now(UTC)
        expires_at = now + self._limits.hold_ttl
        hold = self._app.new_hold(
            key_id=key.key_id,
            request_id=request_id,
            account_id=key.account_id,
            env=key.env,
            amount_micros=hold_micros,
            expires_at=expires_at,
            model=model.id,
        )
        placed = self._hold_fields(key, hold_micros, hold.expires_at)
        admission = await self._gate.admit(
            self._request(
                key,
                str(hold.id),
                placed,
                model_id=model.id if check_entitlement else "",
                estimated_tokens=estimated_tokens,
                now=now,
                count_request=not prechecked,
            )
        )
        if not admission.admitted:
            raise AdmissionRefused(admission)
        undo = balance.close_hold(str(hold.id), placed)
        try:
            result = await self._writer.save(hold)
        except BaseException:
            await asyncio.shield(self._gate.release(undo))
            raise
        if result.duplicate:
            await self._gate.release(undo)
            # Used before (that request already settled, so admission could not see its hold).
            raise AdmissionRefused(replace(admission, verdict=Verdict.DUPLICATE))
        return MeteredRequest(
            key,
            model,
            request_id,
            hold,
            hold_micros,
            estimated_tokens,
            int(now.timestamp()),
            admission,
        )

    @staticmethod
    def _hold_fields(key: KeyIdentity, amount_micros: int, expires_at: str) -> dict[str, object]:
        """A hold as the balance projection records it (the Placed event's fields)."""
        return {
            "account_id": key.account_id,
            "env": key.env,
            "key_id": key.key_id,
            "amount_micros": amount_micros,
            "expires_at": expires_at,
        }

    def _request(
        self,
        key: KeyIdentity,
        hold_id: str,
        hold_fields: dict[str, object],
        *,
        model_id: str,
        estimated_tokens: int,
        now: datetime,
        count_request: bool = True,
    ) -> AdmissionRequest:
        """The read-model keys and figures one admission (or precheck) step looks at."""
        return AdmissionRequest(
            key_id=key.key_id,
            key_record_key=keys.record_key(key.aggregate_id),
            limits_key=ratelimit_config.limits_key(key.aggregate_id),
            spend_key=usage.key_month_key(key.key_id, now.strftime("%Y-%m")),
            key_held_key=balance.key_held_key(key.key_id),
            balance_key=balance.balance_key(key.account_id, key.env),
            model=model_id,
            hold=balance.open_hold(hold_id, hold_fields),
            estimated_tokens=estimated_tokens,
            now_ms=int(now.timestamp() * 1000),
            default_rpm=self._limits.default_rpm,
            default_tpm=self._limits.default_tpm,
            count_request=count_request,
            secret_hash=key.secret_hash,
        )

    async def precheck(
        self,
        key: KeyIdentity,
        model: ModelSpec,
        request_id: str,
        *,
        floor_micros: int,
        floor_tokens: int,
        now: datetime | None = None,
    ) -> Admission:
        """Refuse early and cheaply what admission would refuse anyway — a revoked or expired
        key, a model it may not use, RPM, a budget or balance below `floor_micros` — before
        the request's expensive work. Counts the request against RPM; holds nothing."""
        now = now or datetime.now(UTC)
        admission = await self._gate.precheck(
            self._request(
                key,
                str(UsageHold.create_id(key.key_id, request_id)),
                self._hold_fields(key, floor_micros, now.isoformat()),
                model_id=model.id,
                estimated_tokens=floor_tokens,
                now=now,
            )
        )
        if not admission.admitted:
            raise AdmissionRefused(admission)
        return admission

    async def revoke(self, key_id: str) -> None:
        """Mark a key revoked for every instance at once (its Revoked event is already
        written; the key index catches up when the projector applies it)."""
        await self._gate.mark_revoked(key_id)

    async def is_revoked(self, key_id: str) -> bool:
        return await self._gate.is_revoked(key_id)

    async def settle(
        self,
        request: MeteredRequest,
        spent: Usage,
        outcome: str,
        *,
        price_micros: int | None = None,
        pii_counts: dict[str, int] | None = None,
    ) -> CommandResult | None:
        """Append the request's one settlement: the tokens at the model's prices, or a flat
        `price_micros` (e.g. a PII preview). The hold caps the debit; any excess is recorded
        on the event as a shortfall (UsageHold.settle) and counted here."""
        actual = cost_micros(request.model, spent) if price_micros is None else price_micros
        if actual > request.hold_micros:
            self.shortfalls += 1
            self.shortfall_micros += actual - request.hold_micros
            log.warning(
                "request %s cost %s > hold %s; the excess is recorded as a shortfall",
                request.request_id,
                actual,
                request.hold_micros,
            )
        request.hold.settle(
            cost_micros=actual,
            tokens_in=spent.prompt_tokens,
            tokens_out=spent.completion_tokens,
            outcome=outcome,
            estimated=spent.estimated,
            pii_counts=pii_counts,
        )
        events = list(request.hold.collect_events())
        result: CommandResult | None = None
        try:
            async for attempt in through_outage(log):
                with attempt:
                    result = await self._writer.save_events(request.hold.id, events)
        except Exception:
            # The store stayed unreachable: the hold expires and the sweeper settles it
            # (outcome `expired`, flagged for finance).
            log.exception("settlement of %s failed; left to the sweeper", request.request_id)
        await self._gate.correct_tokens(
            request.key.key_id,
            request.admitted_at_s,
            spent.total_tokens - request.estimated_tokens,
        )
        return result

    def settle_in_background(
        self,
        request: MeteredRequest,
        spent: Usage,
        outcome: str,
        *,
        price_micros: int | None = None,
        pii_counts: dict[str, int] | None = None,
    ) -> asyncio.Task[CommandResult | None]:
        """Settle in a task of its own, so a cancelled request (client gone) still settles."""
        task = asyncio.create_task(
            self.settle(request, spent, outcome, price_micros=price_micros, pii_counts=pii_counts)
        )
        self._settlements.add(task)
        task.add_done_callback(self._settlements.discard)
        return task

    async def drain(self) -> None:
        """Wait for in-flight settlements (at shutdown)."""
        while self._settlements:
            await asyncio.gather(*list(self._settlements), return_exceptions=True)
