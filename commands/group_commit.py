"""Group commit: many requests' hold and settlement events in one event-store transaction.

The request path must never pay one transaction per event (PostgreSQL's insert lock allows a
few hundred per second; batched, thousands: docs/architecture.md, "Measured pitfalls").
Callers `await save(aggregate)`;
one writer thread saves whatever accumulated while the previous batch was committing, so the
batch size follows the load with no added delay at low load. A collision in a batch (a reused
request id) is isolated by retrying that batch's aggregates one by one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import IntegrityError

from commands.application import PryvApplication
from commands.results import CommandResult

log = logging.getLogger("pryv.group_commit")


@dataclass
class _Pending:
    aggregate_id: Any
    events: list[Any]
    future: asyncio.Future[CommandResult]


class GroupCommitWriter:
    def __init__(self, app: PryvApplication, *, max_batch: int = 500) -> None:
        self._app = app
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batch_sizes: Counter[int] = Counter()  # batch size -> how many batches
        self.batch_observers: list[Callable[[int], None]] = []  # e.g. a metrics histogram

    async def save(self, aggregate: Any) -> CommandResult:
        """Durably append the aggregate's pending events; a collision returns a duplicate."""
        return await self.save_events(aggregate.id, list(aggregate.collect_events()))

    async def save_events(self, aggregate_id: Any, events: list[Any]) -> CommandResult:
        """Like `save`, for events already collected (so a failed save can be retried)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(aggregate_id, events, future))
        return await future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self.batch_sizes[len(batch)] += 1
            for observe in self.batch_observers:
                observe(len(batch))
            try:
                results = await asyncio.to_thread(self._save_batch, batch)
            except Exception as exc:  # the store is down: every caller in the batch hears it
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            for pending, result in zip(batch, results, strict=True):
                if not pending.future.done():
                    pending.future.set_result(result)

    def _save_batch(self, batch: list[_Pending]) -> list[CommandResult]:
        try:
            recordings = self._app.save(*[e for p in batch for e in p.events])
        except IntegrityError:
            return [self._save_one(p) for p in batch]
        last: dict[Any, int] = {}
        for recording in recordings:
            last[recording.domain_event.originator_id] = recording.notification.id
        return [CommandResult(p.aggregate_id, last.get(p.aggregate_id)) for p in batch]

    def _save_one(self, pending: _Pending) -> CommandResult:
        try:
            recordings = self._app.save(*pending.events)
        except IntegrityError:
            return CommandResult(pending.aggregate_id, None, duplicate=True)
        return CommandResult(pending.aggregate_id, recordings[-1].notification.id)
