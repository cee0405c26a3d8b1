"""Channel settler: watches open MPP stream channels for a payer forcing a close.

A payer may call the escrow's `requestClose` and, after its grace period (15 minutes), take
back the whole deposit, vouchers notwithstanding: only a payee close inside the grace period
collects what was served. Every `interval` seconds the settler reads each open channel's
escrow state and, where a close was requested, closes it with the highest accepted voucher
(refunding what that captures beyond what was spent; `SessionChannels.secure`). It runs beside
the hold sweeper (`pryv sweep`, or in-process with `pryv serve --workers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bootstrap.platform import Platform
from commands.retries import until_done
from domain.errors import PryvError
from gateway.mpp.session import SessionChannels
from projections import channels

log = logging.getLogger("pryv.channels")


class ChannelSettler:
    def __init__(self, platform: Platform, *, interval: float = 10.0) -> None:
        self._platform = platform
        self._channels = SessionChannels(platform)
        self._interval = interval

    async def settle_once(self) -> int:
        """Channels closed this round."""
        acted = 0
        for channel_id in await channels.open_channels(self._platform.read_store):
            try:
                acted += await self._channels.secure(channel_id)
            except PryvError as exc:  # one channel's trouble must not stop the others' check
                log.error("channel %s: could not settle the forced close: %s", channel_id, exc)
        return acted

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await until_done(
                self.settle_once, stop=stop, log=log, what="channel check", pause=self._interval
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)
