"""Every projection by name, in the order the projector applies them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from domain.envelope import EventEnvelope
from projections import (
    activity,
    balance,
    channels,
    keys,
    ledger,
    ratelimit_config,
    settings,
    usage,
)
from projections.ops import Op, ProjectionWrite

ProjectFn = Callable[[EventEnvelope], list[Op]]

# Every projection module, in the order the projector applies them; each names itself (NAME),
# projects (project) and owns the read-model keys under its SEGMENTS (projections/keyspace.py).
MODULES = (balance, keys, ratelimit_config, ledger, usage, settings, channels, activity)

PROJECTIONS: dict[str, ProjectFn] = {module.NAME: module.project for module in MODULES}


def writes_for(
    event: EventEnvelope, bus_seq: int, names: tuple[str, ...] = tuple(PROJECTIONS)
) -> list[ProjectionWrite]:
    """One write per projection, even when it has no ops: its position still advances."""
    return [
        ProjectionWrite(name, event.position, bus_seq, tuple(PROJECTIONS[name](event)))
        for name in names
    ]


def page_writes(
    events: Sequence[EventEnvelope], names: tuple[str, ...] = tuple(PROJECTIONS)
) -> list[ProjectionWrite]:
    """A page of a rebuild as one write per projection: every event's ops in log order, at the
    last event's position. Only for a generation that this rebuild alone writes and that
    takes the page in one atomic apply: there no event of the page can have been applied
    before, so the per-event position guard has nothing to skip. (The live projector keeps
    one write per event: after a redelivery, some of a batch's events are already in.) Eight
    writes a page instead of eight an event: the writes were most of a rebuild's time."""
    if not events:
        return []
    last = events[-1].position
    return [
        ProjectionWrite(name, last, 0, tuple(op for e in events for op in PROJECTIONS[name](e)))
        for name in names
    ]
