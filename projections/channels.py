"""MPP stream channels not yet closed: what the channel settler watches (workers/channels.py)."""

from __future__ import annotations

from domain import topics
from domain.envelope import EventEnvelope
from projections.ops import Op, SortedAdd, SortedRemove
from projections.store import ReadStore

NAME = "channels"
# First segments of the keys this projection owns (projections/keyspace.py).
SEGMENTS = ("channels",)
OPEN_KEY = "channels:open"


def project(event: EventEnvelope) -> list[Op]:
    if event.topic == topics.CHANNEL_OPENED:
        return [SortedAdd(OPEN_KEY, event.position, event.data["channel_id"])]
    if event.topic == topics.CHANNEL_CLOSED:
        return [SortedRemove(OPEN_KEY, event.data["channel_id"])]
    return []


async def open_channels(store: ReadStore, limit: int = 1000) -> list[str]:
    """Channel ids (bytes32 hex) opened and not closed, oldest first."""
    return await store.sorted_by_score(OPEN_KEY, max_score=2**62, limit=limit)
