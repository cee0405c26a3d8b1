"""In-process bus for the embedded default: a list in memory, with wake-ups for waiting consumers.

Messages every consumer has acknowledged are dropped, so a long-running embedded server keeps
only the backlog in memory (the event store, not the bus, is the durable log).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from domain.envelope import EventEnvelope
from infra.bus import BusMessage


class MemoryBus:
    def __init__(self) -> None:
        self._messages: list[BusMessage] = []
        self._dropped = 0  # messages trimmed from the front; seq of _messages[i] is dropped+i+1
        self._last_position = 0
        self._acked: dict[int, int] = {}  # consumer id -> highest acked seq
        self._arrived = asyncio.Event()

    async def publish(self, envelopes: Sequence[EventEnvelope]) -> None:
        published = False
        for envelope in envelopes:
            if envelope.position <= self._last_position:
                continue  # like Nats-Msg-Id deduplication: positions only move forward
            seq = self._dropped + len(self._messages) + 1
            self._messages.append(BusMessage(seq, envelope))
            self._last_position = envelope.position
            published = True
        if published:
            self._arrived.set()
            self._arrived = asyncio.Event()

    async def last_published_position(self) -> int:
        return self._last_position

    async def consumer(self, name: str, after_seq: int) -> MemoryConsumer:
        consumer = MemoryConsumer(self, after_seq)
        self._acked[id(consumer)] = after_seq
        return consumer

    def after(self, seq: int, limit: int) -> list[BusMessage]:
        start = max(seq - self._dropped, 0)
        return self._messages[start : start + limit]

    def acked(self, consumer: MemoryConsumer, seq: int) -> None:
        self._acked[id(consumer)] = max(self._acked.get(id(consumer), 0), seq)
        self._trim()

    def forget(self, consumer: MemoryConsumer) -> None:
        self._acked.pop(id(consumer), None)

    def _trim(self) -> None:
        if not self._acked:
            return
        done = min(self._acked.values()) - self._dropped
        if done > 1024:  # trim in chunks; list slicing is O(n)
            del self._messages[:done]
            self._dropped += done

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), timeout)

    async def close(self) -> None:
        return None


class MemoryConsumer:
    def __init__(self, bus: MemoryBus, after_seq: int) -> None:
        self._bus = bus
        self._next = after_seq

    async def fetch(self, max_messages: int, timeout: float) -> list[BusMessage]:
        batch = self._bus.after(self._next, max_messages)
        if not batch:
            await self._bus.wait(timeout)
            batch = self._bus.after(self._next, max_messages)
        if batch:
            self._next = batch[-1].seq
        return batch

    async def ack(self, messages: Sequence[BusMessage]) -> None:
        if messages:
            self._bus.acked(self, messages[-1].seq)

    async def close(self) -> None:
        self._bus.forget(self)
