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

PROJECTIONS: dict[str, ProjectFn] = {
    balance.NAME: balance.project,
    keys.NAME: keys.project,
    ratelimit_config.NAME: ratelimit_config.project,
    ledger.NAME: ledger.project,
    usage.NAME: usage.project,
    settings.NAME: settings.project,
    channels.NAME: channels.project,
    activity.NAME: activity.project,
}


def writes_for(
    event: EventEnvelope, bus_seq: int, names: tuple[str, ...] = tuple(PROJECTIONS)
) -> list[ProjectionWrite]:
    """One write per projection, even when it has no ops: its position still advances."""
    return [
        ProjectionWrite(name, event.position, bus_seq, tuple(PROJECTIONS[name](event)))
        for name in names
    ]
