"""Replay the event log straight into a read store (no bus): rebuilds and operator reads."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from domain.envelope import EventEnvelope
from projections.catalog import PROJECTIONS, writes_for
from projections.ops import ProjectionWrite
from projections.store import ReadStore


async def replay_log(
    read_log: Callable[[int, int], Sequence[EventEnvelope]],
    store: ReadStore,
    *,
    names: tuple[str, ...] = tuple(PROJECTIONS),
    page_size: int = 1000,
) -> int:
    """Apply every event after each projection's position; returns the events read."""
    after = min([(await store.position(name)).position for name in names], default=0)
    count = 0
    while True:
        page = read_log(after, page_size)
        if not page:
            return count
        writes: list[ProjectionWrite] = []
        for event in page:
            writes += writes_for(event, 0, names)
        await store.apply(writes)
        after = page[-1].position
        count += len(page)
