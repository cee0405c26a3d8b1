"""Read-your-writes: wait until a projection has applied a given log position."""

from __future__ import annotations

import asyncio
import time

from projections.store import ReadStore


async def wait_until_applied(
    store: ReadStore, projection: str, position: int, timeout: float, poll: float = 0.005
) -> bool:
    """True once `projection` reached `position`; False if `timeout` seconds passed first."""
    deadline = time.monotonic() + timeout
    while True:
        if (await store.position(projection)).position >= position:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(poll)
