"""Projector: applies bus messages to the read models, each projection idempotent by log position.

The resume point (bus sequence) is stored in the read store with the writes it belongs to, so a
crash between apply and ack only causes a redelivery that the position guard turns into a no-op.
Messages must arrive in bus order; a gap (possible only after redelivery) restarts the consumer
from the last applied sequence instead of skipping anything.
"""

from __future__ import annotations

import asyncio
import logging

from commands.retries import until_done
from infra.bus import BusMessage, EventBus
from projections.catalog import PROJECTIONS, writes_for
from projections.ops import ProjectionWrite
from projections.store import ReadStore

log = logging.getLogger("pryv.projector")


class Projector:
    def __init__(
        self,
        bus: EventBus,
        store: ReadStore,
        *,
        names: tuple[str, ...] = tuple(PROJECTIONS),
        consumer_name: str = "projector",
        batch_size: int = 500,
    ) -> None:
        self._bus = bus
        self._store = store
        self._names = names
        self._consumer_name = consumer_name
        self._batch_size = batch_size
        self.last_seq = 0
        self.applied_events = 0

    async def _resume_seq(self) -> int:
        positions = [await self._store.position(name) for name in self._names]
        return min(p.bus_seq for p in positions)

    async def run(self, stop: asyncio.Event, idle_timeout: float = 0.5) -> None:
        while not stop.is_set():  # a failed cycle resumes from the stored position
            await until_done(
                lambda: self._consume(stop, idle_timeout),
                stop=stop,
                log=log,
                what="projector cycle",
            )

    async def _consume(self, stop: asyncio.Event, idle_timeout: float) -> None:
        self.last_seq = await self._resume_seq()
        if self.last_seq == 0:
            # Empty read models over a non-empty bus (a new or wiped Redis): until the replay
            # reaches the bus's end, balances miss later debits and holds — fence admission.
            end = await self._bus.last_published_position()
            if end:
                await self._store.set_fence(end)
        consumer = await self._bus.consumer(self._consumer_name, self.last_seq)
        try:
            while not stop.is_set():
                messages = await consumer.fetch(self._batch_size, idle_timeout)
                fresh = self.next_run(messages)
                # Checked when idle too: read models lost during a quiet spell would otherwise
                # stay empty (every key unknown) until some event happened to arrive.
                if (fresh or not messages) and await self._store_regressed():
                    log.warning(
                        "read store lost its data (stored bus seq below %s); "
                        "replaying the bus from the stored position",
                        self.last_seq,
                    )
                    return
                if fresh:
                    await self.apply(fresh)
                if messages:
                    await consumer.ack(messages)
                if any(m.seq > self.last_seq for m in messages):
                    # Something arrived beyond a gap (redelivery reorders): never skip it;
                    # resubscribe from the last applied sequence instead.
                    log.warning("bus gap after seq %s; restarting consumer", self.last_seq)
                    return
        finally:
            await consumer.close()

    def next_run(self, messages: list[BusMessage]) -> list[BusMessage]:
        """The contiguous run of new messages right after the last applied one, in bus order,
        without duplicates: positions guard against replays, so order is all that matters."""
        by_seq = {m.seq: m for m in messages if m.seq > self.last_seq}
        run = []
        expected = self.last_seq + 1
        while expected in by_seq:
            run.append(by_seq[expected])
            expected += 1
        return run

    async def _store_regressed(self) -> bool:
        """True if the read store is behind what this projector applied (Redis restarted
        empty, or someone cleared it): resuming from the store, not from memory, rebuilds it."""
        stored = await self._store.position(self._names[0])
        return stored.bus_seq < self.last_seq

    async def apply(self, messages: list[BusMessage]) -> None:
        writes: list[ProjectionWrite] = []
        for message in messages:
            writes += writes_for(message.envelope, message.seq, self._names)
        await self._store.apply(writes)
        self.last_seq = messages[-1].seq
        self.applied_events += len(messages)
