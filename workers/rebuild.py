"""Zero-downtime projection rebuild: replay the log into a new generation while the served one
keeps answering (and the live projector keeps updating it), then swap atomically, then drop
the old generation once every process has stopped reading it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from domain.envelope import EventEnvelope
from projections.catalog import PROJECTIONS, writes_for
from projections.store import ReadStore

ReadLog = Callable[[int, int], Sequence[EventEnvelope]]


@dataclass(frozen=True)
class RebuildProgress:
    names: tuple[str, ...]
    position: int  # last log position replayed
    target: int  # the log's end when the rebuild started (positions have gaps: an estimate)
    events: int
    elapsed: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        if self.position <= 0 or self.position >= self.target or self.elapsed <= 0:
            return None
        return self.elapsed * (self.target - self.position) / self.position


async def rebuild(
    read_log: ReadLog,
    max_position: Callable[[], int],
    store: ReadStore,
    names: Sequence[str] = tuple(PROJECTIONS),
    *,
    page_size: int = 2000,
    drop_after: float = 2.0,
    on_progress: Callable[[RebuildProgress], None] | None = None,
) -> dict[str, int]:
    """Rebuild `names`; returns the generation each is now served from."""
    unknown = sorted(set(names) - set(PROJECTIONS))
    if unknown:
        raise ValueError(f"unknown projections: {', '.join(unknown)}")
    names = tuple(dict.fromkeys(names))
    served = await store.generations()
    old = {name: served.get(name, 0) for name in names}
    target = {name: old[name] + 1 for name in names}
    for name, generation in target.items():  # leftovers of an interrupted rebuild
        await store.drop_generation(name, generation)

    started = time.monotonic()
    goal = await asyncio.to_thread(max_position)
    after, events = 0, 0
    pending = set(names)
    while pending:
        page = await asyncio.to_thread(read_log, after, page_size)
        if page:
            writes = [w for event in page for w in writes_for(event, 0, names)]
            await store.apply(writes, into=target)
            after, events = page[-1].position, events + len(page)
            if on_progress:
                on_progress(
                    RebuildProgress(
                        names, after, max(goal, after), events, time.monotonic() - started
                    )
                )
            continue
        # Caught up with the log: swap each projection whose new generation is not behind
        # the served one (the live projector may still be ahead; then replay more and retry).
        for name in sorted(pending):
            if await store.swap_generation(name, target[name]):
                pending.discard(name)
        if pending:
            await asyncio.sleep(0.05)
    await asyncio.sleep(drop_after)  # readers cache the served generation for ~1 s
    for name in names:
        await store.drop_generation(name, old[name])
    return target
