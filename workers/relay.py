"""Relay: publishes the event store's notification log to the bus, in order, from the bus's end.

The resume point is read from the bus itself (its last published position), so a relay killed at
any moment restarts exactly where the bus stopped; the bus deduplicates the rare overlap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from commands.retries import until_done
from domain.envelope import EventEnvelope
from infra.bus import EventBus

log = logging.getLogger("pryv.relay")

ReadLog = Callable[[int, int], Sequence[EventEnvelope]]


class Relay:
    def __init__(
        self,
        read_log: ReadLog,
        bus: EventBus,
        *,
        page_size: int = 500,
        poll_interval: float = 0.01,
    ) -> None:
        self._read_log = read_log
        self._bus = bus
        self._page_size = page_size
        self._poll_interval = poll_interval
        self._position: int | None = None
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.published = 0

    @property
    def position(self) -> int:
        return self._position or 0

    def wake(self, _position: int = 0) -> None:
        """Thread-safe nudge after a local write, so embedded mode does not wait for the poll."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def publish_pending(self) -> int:
        """Publish everything after the bus's last position; returns how many were published."""
        if self._position is None:
            self._position = await self._bus.last_published_position()
        count = 0
        while True:
            page = await asyncio.to_thread(self._read_log, self._position, self._page_size)
            if not page:
                return count
            await self._bus.publish(page)
            self._position = page[-1].position
            count += len(page)
            self.published += len(page)
            if len(page) < self._page_size:  # the log's end: no second read to find it empty
                return count

    def _forget_position(self) -> None:
        self._position = None

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            # Cleared before reading, so a write recorded during the cycle wakes the next one.
            self._wake.clear()
            # A store or bus outage: retry from the bus's own position, never skip.
            await until_done(
                self.publish_pending,
                stop=stop,
                log=log,
                what="relay cycle",
                on_failure=self._forget_position,
            )
            waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(
                waits, timeout=self._poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in waits:
                waiter.cancel()
