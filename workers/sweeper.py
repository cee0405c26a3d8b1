"""Hold sweeper: settles holds whose request never settled (the process died mid-request).

Expired open holds are settled at zero with outcome `expired` — the customer is not charged for
an answer we cannot prove was delivered; finance sees them flagged in the ledger. Holds that
admission recorded but whose Placed event never became durable are dropped from the read model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from commands.application import PryvApplication
from commands.retries import until_done
from projections import balance
from projections.store import ReadStore

log = logging.getLogger("pryv.sweeper")


@dataclass(frozen=True)
class SweepReport:
    settled: int
    released: int


class HoldSweeper:
    def __init__(self, app: PryvApplication, store: ReadStore, *, interval: float = 5.0) -> None:
        self._app = app
        self._store = store
        self._interval = interval
        self.expired_holds = 0  # settled at zero by this process (dead requests)
        self.released_holds = 0  # reservations released that never became holds

    async def sweep_once(self, now: datetime | None = None) -> SweepReport:
        now = now or datetime.now(UTC)
        candidates = await balance.expired_hold_ids(self._store, int(now.timestamp()))
        if not candidates:
            return SweepReport(0, 0)
        report = await asyncio.to_thread(self._app.expire_holds, [UUID(c) for c in candidates], now)
        released = 0
        for hold_id in report.never_placed:
            fields = await self._store.get_fields(balance.hold_key(str(hold_id)))
            if fields:
                await self._store.apply_ops_atomically([balance.close_hold(str(hold_id), fields)])
                released += 1
        settled = sum(not r.duplicate for r in report.settled)
        self.expired_holds += settled
        self.released_holds += released
        if settled or released:
            log.warning(
                "swept %s expired holds (settled at zero) and %s never-placed holds",
                settled,
                released,
            )
        return SweepReport(settled, released)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await until_done(
                self.sweep_once, stop=stop, log=log, what="sweep", pause=self._interval
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)
