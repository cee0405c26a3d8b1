"""Relay crash: killed mid-stream and restarted, every event still takes effect exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bootstrap.platform import Platform
from commands.positions import wait_until_applied
from domain import ids
from domain.aggregates import CreditGrant
from infra.settings import Settings
from projections import balance, ledger
from projections.catalog import PROJECTIONS
from workers.projector import Projector
from workers.relay import Relay

WALLETS = [f"0x{i:040x}" for i in range(10, 13)]
EVENTS_PER_WALLET = 600
AMOUNT = 1_000


def write_grants(platform: Platform) -> None:
    """Many small postings, saved in batches to keep set-up quick."""
    for wallet in WALLETS:
        platform.app.open_account(wallet)
        for start in range(0, EVENTS_PER_WALLET, 200):
            platform.app.save(
                *[
                    CreditGrant(
                        grant_ref=f"{wallet}-{n}",
                        account_id=str(ids.account_id(wallet)),
                        wallet=wallet,
                        env="live",
                        amount_micros=AMOUNT,
                        reason="load",
                        granted_by="test",
                    )
                    for n in range(start, start + 200)
                ]
            )


def relay_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PRYV_DATA_DIR": str(settings.data_dir),
            "PRYV_DATABASE_URL": settings.database_url or "",
            "PRYV_DATABASE_SCHEMA": settings.database_schema or "",
            "PRYV_NATS_URL": settings.nats_url or "",
            "PRYV_NATS_STREAM": settings.nats_stream,
            "PRYV_REDIS_URL": settings.redis_url or "",
            "PRYV_REDIS_PREFIX": settings.redis_prefix,
            "PRYV_KEY_PEPPER": settings.key_pepper.hex(),
            "PRYV_RELAY_PAGE_SIZE": "25",
        }
    )
    return env


async def kill_relay_mid_stream(platform: Platform, total: int) -> int:
    """Run the relay as a real process and SIGKILL it once it has published part of the log."""
    if platform.settings.nats_url is None:
        # Embedded: the relay is a task of this process; cancel it at an arbitrary await.
        relay = Relay(platform.app.read_log, platform.bus, page_size=25)
        task = asyncio.create_task(relay.run(asyncio.Event()))
        while await platform.bus.last_published_position() == 0:
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return await platform.bus.last_published_position()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "relay"],
        env=relay_env(platform.settings),
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while await platform.bus.last_published_position() < total // 4:
            assert proc.poll() is None, "relay exited on its own"
            assert time.monotonic() < deadline, "relay published nothing"
            await asyncio.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    return await platform.bus.last_published_position()


async def test_relay_killed_mid_stream_then_restarted_applies_every_event_once(
    platform: Platform,
) -> None:
    await asyncio.to_thread(write_grants, platform)
    total = platform.app.max_position()
    killed_at = await kill_relay_mid_stream(platform, total)
    assert 0 < killed_at < total, "the kill must land mid-stream for this test to mean anything"

    stop = asyncio.Event()
    projector = Projector(platform.bus, platform.read_store)
    tasks = [
        asyncio.create_task(Relay(platform.app.read_log, platform.bus, page_size=25).run(stop)),
        asyncio.create_task(projector.run(stop)),
    ]
    try:
        for name in PROJECTIONS:
            assert await wait_until_applied(platform.read_store, name, total, 30)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    assert projector.applied_events == total  # every event delivered once: no duplicates on the bus
    for wallet in WALLETS:
        account = str(ids.account_id(wallet))
        got = await balance.read_balance(platform.read_store, account, "live")
        assert got.credited_micros == EVENTS_PER_WALLET * AMOUNT
        entries = await ledger.ledger_page(platform.read_store, account, before=None, limit=10_000)
        assert len(entries) == EVENTS_PER_WALLET
