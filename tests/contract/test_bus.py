"""One contract for every EventBus: the in-process MemoryBus and NATS JetStream run the same tests.

The relay relies on ordered, deduplicated, exactly-resumable publishing; the projector relies on
contiguous sequences and on `consumer(name, after_seq)` starting exactly where it says.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from domain.envelope import EventEnvelope
from infra.bus import BusConsumer, BusMessage, BusUnavailable, EventBus
from infra.bus_memory import MemoryBus
from infra.bus_nats import NatsBus
from tests.conftest import NATS_URL, unique_name


def envelope(position: int, **data: Any) -> EventEnvelope:
    return EventEnvelope(
        position=position,
        topic="pryv.Test.Happened.v1",
        originator_id=str(uuid.uuid5(uuid.NAMESPACE_OID, f"test-{position}")),
        originator_version=1,
        timestamp="2026-01-01T00:00:00+00:00",
        data={"n": position, **data},
    )


@dataclass
class Backend:
    """Opens bus objects on one shared log: same object in memory, new connections for NATS."""

    kind: str
    stream: str = ""
    memory: MemoryBus = field(default_factory=MemoryBus)
    opened: list[NatsBus] = field(default_factory=list)

    async def open(self) -> EventBus:
        if self.kind == "memory":
            return self.memory
        bus = await NatsBus.connect(NATS_URL, self.stream)
        self.opened.append(bus)
        return bus


@pytest.fixture(params=["memory", "nats"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "nats":
        return Backend("nats", stream=request.getfixturevalue("nats_stream"))
    return Backend("memory")


@pytest.fixture
async def bus(backend: Backend) -> AsyncIterator[EventBus]:
    bus = await backend.open()
    yield bus
    for opened in backend.opened:
        await opened.close()
    await backend.memory.close()


async def drain(consumer: BusConsumer, timeout: float = 0.3) -> list[BusMessage]:
    """Everything currently available (fetched and acked) until one idle timeout."""
    seen: list[BusMessage] = []
    while True:
        batch = await consumer.fetch(1000, timeout)
        if not batch:
            return seen
        await consumer.ack(batch)
        seen += batch


def positions(messages: Sequence[BusMessage]) -> list[int]:
    return [m.envelope.position for m in messages]


def seqs(messages: Sequence[BusMessage]) -> list[int]:
    return [m.seq for m in messages]


async def test_publish_then_consume_in_order_with_contiguous_seq(bus: EventBus) -> None:
    sent = [envelope(p) for p in (3, 7, 8, 20, 21, 105)]
    await bus.publish(sent[:2])
    await bus.publish(sent[2:])

    consumer = await bus.consumer(unique_name("c"), after_seq=0)
    got = await drain(consumer)
    await consumer.close()

    assert seqs(got) == list(range(1, len(sent) + 1))
    assert [m.envelope for m in got] == sent


async def test_republishing_adds_nothing_and_last_position_is_exact(
    bus: EventBus, backend: Backend
) -> None:
    assert await bus.last_published_position() == 0
    first = [envelope(p) for p in (3, 7, 8, 20)]
    await bus.publish(first)
    assert await bus.last_published_position() == 20

    await bus.publish(first)  # the whole batch again
    await bus.publish([envelope(8), envelope(20), envelope(31), envelope(40)])  # overlapping
    assert await bus.last_published_position() == 40

    # A publisher whose idea of the stream's end is stale must not duplicate either
    # (NATS: Nats-Msg-Id dedup / expected-last-sequence; memory: same object).
    stale = await backend.open()
    assert await stale.last_published_position() == 40
    await bus.publish([envelope(41), envelope(42)])
    await stale.publish([envelope(40), envelope(41), envelope(42), envelope(50)])
    assert await stale.last_published_position() == 50

    # Now `bus` is the stale one, and its next message is new: it must land after 50, promptly
    # (NATS: a rejected expected-last-sequence makes it re-read the stream end and retry).
    started = time.monotonic()
    await bus.publish([envelope(55)])
    assert time.monotonic() - started < 5.0
    assert await bus.last_published_position() == 55

    consumer = await bus.consumer(unique_name("c"), after_seq=0)
    got = await drain(consumer)
    await consumer.close()
    assert positions(got) == [3, 7, 8, 20, 31, 40, 41, 42, 50, 55]
    assert seqs(got) == list(range(1, 11))


async def test_consumer_starts_after_seq_and_recreation_restarts(bus: EventBus) -> None:
    await bus.publish([envelope(p) for p in (10, 20, 30, 40, 50)])
    name = unique_name("projector")

    consumer = await bus.consumer(name, after_seq=2)
    got = await drain(consumer)
    assert seqs(got) == [3, 4, 5]
    assert positions(got) == [30, 40, 50]
    await consumer.close()

    # What the projector does after a restart: same name, its own stored resume point.
    consumer = await bus.consumer(name, after_seq=1)
    got = await drain(consumer)
    assert seqs(got) == [2, 3, 4, 5]
    await consumer.close()

    consumer = await bus.consumer(name, after_seq=4)
    got = await drain(consumer)
    assert seqs(got) == [5]
    await consumer.close()

    # Starting at the end is fine: only what is published later arrives.
    consumer = await bus.consumer(name, after_seq=5)
    assert await consumer.fetch(10, 0.2) == []
    await bus.publish([envelope(60)])
    got = await drain(consumer)
    assert seqs(got) == [6]
    assert positions(got) == [60]
    await consumer.close()


async def test_fetch_idles_then_sees_new_messages(bus: EventBus) -> None:
    consumer = await bus.consumer(unique_name("c"), after_seq=0)

    started = time.monotonic()
    assert await consumer.fetch(100, 0.2) == []
    elapsed = time.monotonic() - started
    assert 0.1 <= elapsed < 2.0

    await bus.publish([envelope(1), envelope(2)])
    got = await drain(consumer)
    assert positions(got) == [1, 2]

    # A fetch that is already waiting wakes up for a publish, well before its timeout.
    waiting = asyncio.ensure_future(consumer.fetch(100, 5.0))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await bus.publish([envelope(3)])
    got = await waiting
    assert time.monotonic() - started < 2.0
    assert seqs(got) == [3]
    assert positions(got) == [3]
    await consumer.ack(got)

    assert await consumer.fetch(100, 0.2) == []
    await consumer.close()


async def test_relay_restart_resumes_exactly(bus: EventBus, backend: Backend) -> None:
    log = [envelope(p) for p in range(5, 400, 3)]  # gapped positions, like notification ids
    half = len(log) // 2

    await bus.publish(log[:half])
    await bus.close()  # the relay process dies

    restarted = await backend.open()
    resume = await restarted.last_published_position()
    assert resume == log[half - 1].position
    await restarted.publish([e for e in log if e.position > resume])
    assert await restarted.last_published_position() == log[-1].position

    consumer = await restarted.consumer(unique_name("c"), after_seq=0)
    got = await drain(consumer)
    await consumer.close()
    assert [m.envelope for m in got] == log
    assert seqs(got) == list(range(1, len(log) + 1))


async def test_nats_second_connection_agrees_and_pipelined_publish(nats_stream: str) -> None:
    first = await NatsBus.connect(NATS_URL, nats_stream)
    second = await NatsBus.connect(NATS_URL, nats_stream)
    try:
        assert await second.last_published_position() == 0
        count = 5_000
        sent = [envelope(p, payload="x" * 200) for p in range(2, 2 * count + 2, 2)]

        started = time.perf_counter()
        await first.publish(sent)
        elapsed = time.perf_counter() - started
        print(f"\nNatsBus.publish: {count} envelopes in {elapsed:.3f}s = {count / elapsed:,.0f}/s")

        assert await second.last_published_position() == sent[-1].position
        assert await first.last_published_position() == sent[-1].position

        consumer = await second.consumer(unique_name("c"), after_seq=0)
        got = await drain(consumer)
        await consumer.close()
        assert seqs(got) == list(range(1, count + 1))
        assert positions(got) == [e.position for e in sent]
    finally:
        await first.close()
        await second.close()


async def test_nats_rejected_publish_leaves_no_gap(nats_stream: str) -> None:
    """If the server rejects one message of a pipelined batch, nothing after it is stored.

    Otherwise the stream would end at a later position and a resuming relay would skip the
    rejected one for good. The rejection is provoked with a stream-level max message size.
    """
    import nats
    from nats.js.api import StorageType, StreamConfig

    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().add_stream(
            StreamConfig(
                name=nats_stream,
                subjects=[f"{nats_stream.lower()}.>"],
                storage=StorageType.FILE,
                max_msg_size=1_000,
            )
        )
    finally:
        await nc.close()

    bus = await NatsBus.connect(NATS_URL, nats_stream)
    try:
        batch = [envelope(1), envelope(2), envelope(3, blob="x" * 2_000), envelope(4)]
        started = time.monotonic()
        with pytest.raises(BusUnavailable):
            await bus.publish(batch)
        assert time.monotonic() - started < 5.0  # reported, not waited out as a missing ack
        assert await bus.last_published_position() == 2

        consumer = await bus.consumer(unique_name("c"), after_seq=0)
        got = await drain(consumer)
        await consumer.close()
        assert positions(got) == [1, 2]
    finally:
        await bus.close()


async def test_nats_unreachable_raises_bus_unavailable() -> None:
    with pytest.raises(BusUnavailable):
        await NatsBus.connect("nats://127.0.0.1:1", "PRYV_UNREACHABLE", timeout=1.0)
