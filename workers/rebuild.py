"""Zero-downtime projection rebuild: replay the log into a new generation while the served one
keeps answering (and the live projector keeps updating it), then swap atomically, then drop
the old generation once every process has stopped reading it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from domain.envelope import EventEnvelope
from domain.errors import ErrorKind, PryvError
from projections.catalog import PROJECTIONS, page_writes
from projections.store import ReadStore

ReadLog = Callable[[int, int], Sequence[EventEnvelope]]
log = logging.getLogger("pryv.rebuild")


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


class RebuildInProgress(PryvError):
    """Another rebuild holds the lease: two would write into the same new generation."""

    kind, code = ErrorKind.CONFLICT, "rebuild_in_progress"


LEASE_TTL = 30.0  # seconds: a crashed rebuild's lease lapses this long after its last renewal


def lease_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def rebuild(
    read_log: ReadLog,
    max_position: Callable[[], int],
    store: ReadStore,
    names: Sequence[str] = tuple(PROJECTIONS),
    *,
    page_size: int = 2000,
    drop_after: float = 2.0,
    on_progress: Callable[[RebuildProgress], None] | None = None,
    lease_ttl: float = LEASE_TTL,
) -> dict[str, int]:
    """Rebuild `names`; returns the generation each is now served from.

    One rebuild at a time: it holds the store's rebuild lease (renewed while it runs) and
    every write, swap and drop carries the lease's fencing token, so a second rebuild is
    refused (RebuildInProgress) and a rebuild that lost its lease can write nothing more. A
    crashed rebuild's lease lapses after `lease_ttl`; the next one drops its leftovers."""
    unknown = sorted(set(names) - set(PROJECTIONS))
    if unknown:
        raise ValueError(f"unknown projections: {', '.join(unknown)}")
    names = tuple(dict.fromkeys(names))
    lease = await store.acquire_rebuild_lease(lease_owner(), lease_ttl)
    if lease is None:
        holder = await store.rebuild_lease()
        who = f"{holder.owner} (lease {holder.token})" if holder else "another process"
        lapse = f"{holder.expires_in:.0f} s" if holder else f"{lease_ttl:.0f} s"
        raise RebuildInProgress(
            f"a rebuild is already running: {who}; if that process died, its lease lapses "
            f"in {lapse} and a new rebuild can start"
        )
    renewing = asyncio.create_task(_renew(store, lease.token, lease_ttl))
    try:
        return await _rebuild(
            read_log, max_position, store, names, lease.token, page_size, drop_after, on_progress
        )
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        await store.release_rebuild_lease(lease.token)


async def _renew(store: ReadStore, token: int, ttl: float) -> None:
    while True:
        await asyncio.sleep(ttl / 3)
        if not await store.renew_rebuild_lease(token, ttl):
            log.error("the rebuild lost its lease; its next write will be refused")
            return


async def _rebuild(
    read_log: ReadLog,
    max_position: Callable[[], int],
    store: ReadStore,
    names: tuple[str, ...],
    fence: int,
    page_size: int,
    drop_after: float,
    on_progress: Callable[[RebuildProgress], None] | None,
) -> dict[str, int]:
    served = await store.generations()
    old = {name: served.get(name, 0) for name in names}
    target = {name: old[name] + 1 for name in names}
    for name, generation in target.items():  # leftovers of an interrupted rebuild
        await store.drop_generation(name, generation, fence=fence)

    started = time.monotonic()
    goal = await asyncio.to_thread(max_position)
    after, events = 0, 0
    pending = set(names)
    # The next page is read (in a thread) while this one is projected: waiting for the read
    # was a fifth of a rebuild's time (bench/rebuild.py).
    reading = asyncio.ensure_future(asyncio.to_thread(read_log, after, page_size))
    try:
        while pending:
            page = await reading
            if page:
                reading = asyncio.ensure_future(
                    asyncio.to_thread(read_log, page[-1].position, page_size)
                )
                # Only the projections not swapped in yet: one already swapped is served and
                # the live projector owns it (a rebuild write there would reset its bus
                # position to 0, which the projector reads as lost data).
                waiting = tuple(name for name in names if name in pending)
                writes = page_writes(page, waiting)
                into = {name: target[name] for name in waiting}
                await store.apply(writes, into=into, fence=fence)
                after, events = page[-1].position, events + len(page)
                if on_progress:
                    on_progress(
                        RebuildProgress(
                            names, after, max(goal, after), events, time.monotonic() - started
                        )
                    )
                continue
            # Caught up with the log: swap each projection whose new generation is not behind
            # the served one (the live projector may still be ahead; then replay more, retry).
            for name in sorted(pending):
                if await store.swap_generation(name, target[name], fence=fence):
                    pending.discard(name)
            if pending:
                await asyncio.sleep(0.05)
                reading = asyncio.ensure_future(asyncio.to_thread(read_log, after, page_size))
    finally:
        reading.cancel()  # a failed or cancelled rebuild: the page being read is unused
    await asyncio.sleep(drop_after)  # readers cache the served generation for ~1 s
    for name in names:
        await store.drop_generation(name, old[name], fence=fence)
    return target
