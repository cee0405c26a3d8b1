"""Every projection by name, in the order the projector applies them."""

from __future__ import annotations

from collections.abc import Callable

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
