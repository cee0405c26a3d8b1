"""Run the relay and projector inside the API process (the embedded default, and tests)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from audit.sealer import running_sealer
from bootstrap.platform import Platform
from commands.positions import wait_until_applied
from projections.catalog import PROJECTIONS
from workers.alerts import LowBalanceNotifier
from workers.channels import ChannelSettler
from workers.projector import Projector
from workers.relay import Relay
from workers.sweeper import HoldSweeper

log = logging.getLogger("pryv.workers")


@contextlib.asynccontextmanager
async def running_workers(
    platform: Platform, *, catch_up: bool = False, seal: bool | None = None
) -> AsyncIterator[tuple[Relay, Projector]]:
    """Start relay, projector, hold sweeper, channel settler and low-balance notifier as tasks;
    stop them on exit.

    With `catch_up`, return only once every projection has applied the log as it was at start,
    so an embedded server never answers from half-rebuilt read models. With `seal` (default: in
    the embedded deployment; production runs one `pryv audit seal`), the sealer runs too.
    """
    async with contextlib.AsyncExitStack() as stack:
        if platform.settings.embedded if seal is None else seal:
            await stack.enter_async_context(running_sealer(platform.app, platform.settings))
        async with _running(platform, catch_up) as workers:
            yield workers


@contextlib.asynccontextmanager
async def _running(platform: Platform, catch_up: bool) -> AsyncIterator[tuple[Relay, Projector]]:
    stop = asyncio.Event()
    relay = Relay(platform.app.read_log, platform.bus, page_size=platform.settings.relay_page_size)
    projector = Projector(platform.bus, platform.read_store)
    unsubscribe = platform.app.on_recorded(relay.wake)
    sweeper = HoldSweeper(platform.app, platform.read_store)
    settler = ChannelSettler(platform)
    notifier = LowBalanceNotifier(platform.read_store, platform.settings)
    tasks = [
        asyncio.create_task(notifier.run(stop)),
        asyncio.create_task(relay.run(stop)),
        asyncio.create_task(projector.run(stop)),
        asyncio.create_task(sweeper.run(stop)),
        asyncio.create_task(settler.run(stop)),
    ]
    try:
        if catch_up:
            started = time.monotonic()
            target = await asyncio.to_thread(platform.app.max_position)
            for name in PROJECTIONS:
                while not await wait_until_applied(platform.read_store, name, target, 5.0):
                    log.info("rebuilding read models: waiting for %s to reach %s", name, target)
            log.info("read models at position %s after %.2fs", target, time.monotonic() - started)
        yield relay, projector
    finally:
        unsubscribe()
        stop.set()
        # Cancelling is safe at any await: the relay resumes from the bus, the projector from
        # the position stored with its last atomic write.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
