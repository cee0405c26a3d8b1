"""Projection rebuild under live traffic, and status/lag while a projector is stopped."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bootstrap.platform import open_platform
from domain import ids
from infra.settings import Settings
from projections import balance
from projections.catalog import PROJECTIONS
from projections.finance import live_postings
from tests.evidence import OPERATOR
from tests.fakes.upstream import FakeUpstream
from tests.gateway_harness import Gateway, running_gateway
from tests.integration.test_relay_crash import relay_env
from workers.projector import Projector
from workers.rebuild import RebuildProgress, rebuild
from workers.relay import Relay

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def gateway(platform_settings: Settings, upstream: FakeUpstream) -> AsyncIterator[Gateway]:
    async with running_gateway(platform_settings, upstream) as running:
        yield running


async def test_rebuild_under_live_traffic_swaps_without_losing_a_posting(
    gateway: Gateway,
) -> None:
    platform = gateway.platform
    wallets = ["0x" + f"{n:040x}" for n in range(1, 4)]
    keys = [await gateway.funded_key(env="live", usd="50", wallet=w) for w in wallets]
    before = {
        w: await balance.read_balance(platform.read_store, str(ids.account_id(w)), "live")
        for w in wallets
    }
    statuses: Counter[int] = Counter()
    stop = asyncio.Event()

    async def traffic(key: str) -> None:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
            while not stop.is_set():
                response = await http.post(
                    "/v1/chat/completions",
                    headers={"Authorization": f"Bearer {key}"},
                    json={
                        "model": "fake-live",
                        "max_tokens": 5,
                        "messages": [{"role": "user", "content": "during the rebuild"}],
                    },
                )
                statuses[response.status_code] += 1

    drivers = [asyncio.create_task(traffic(k)) for k in keys]
    await asyncio.sleep(0.3)
    progress: list[RebuildProgress] = []
    old = await platform.read_store.generations()
    new = await rebuild(
        platform.app.read_log,
        platform.app.max_position,
        platform.read_store,
        page_size=50,
        drop_after=1.2,
        on_progress=progress.append,
    )
    # Traffic continues on the new generation; wait for enough answers rather than a time
    # (the first requests of a cold process take seconds on a loaded box).
    deadline = asyncio.get_running_loop().time() + 60
    while sum(statuses.values()) < 12 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*drivers)

    assert set(statuses) == {200} and statuses[200] > 10, statuses
    assert new == {name: old.get(name, 0) + 1 for name in PROJECTIONS}
    assert await platform.read_store.generations() == new
    assert progress and progress[-1].events >= progress[0].events > 0
    await gateway.settlements(statuses[200])
    log = await asyncio.to_thread(platform.app.read_log, 0, 1_000_000)
    postings = live_postings(log)
    for wallet in wallets:
        account = str(ids.account_id(wallet))
        after = await balance.read_balance(platform.read_store, account, "live")
        assert after.held_micros == 0
        assert after.balance_micros == postings[account]  # before + the traffic's postings
        assert after.balance_micros < before[wallet].balance_micros
    # and the rebuilt models are exactly a replay of the log
    from infra.read_store_memory import MemoryReadStore
    from projections.replay import replay_log

    replayed = MemoryReadStore()
    await replay_log(platform.app.read_log, replayed)
    assert await platform.read_store.dump() == await replayed.dump()


async def test_status_shows_lag_of_a_stopped_projector_and_recovery(
    services_settings: Settings,
) -> None:
    platform = await open_platform(services_settings)
    env = relay_env(services_settings)

    def status() -> dict[str, object]:
        out = subprocess.run(
            [sys.executable, "-m", "cli.main", "projections", "status", "--json"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        return dict(json.loads(out.stdout))

    try:
        relay = Relay(platform.app.read_log, platform.bus)
        for n in range(5):  # events while no projector runs
            await asyncio.to_thread(
                platform.app.grant_credits,
                authorization=OPERATOR,
                wallet="0x" + "ab" * 20,
                env="live",
                amount_micros=1,
                reason="t",
                granted_by="t",
                grant_ref=f"lag-{n}",
            )
        await relay.publish_pending()
        stopped = await asyncio.to_thread(status)
        projections = stopped["projections"]
        assert isinstance(projections, dict)
        assert all(row["lag"] == stopped["logPosition"] for row in projections.values())
        assert stopped["relay"] == {"busPosition": stopped["logPosition"], "lag": 0}

        stop = asyncio.Event()
        task = asyncio.create_task(Projector(platform.bus, platform.read_store).run(stop))
        try:
            for _ in range(100):
                if (await platform.read_store.position("ledger")).position == stopped[
                    "logPosition"
                ]:
                    break
                await asyncio.sleep(0.05)
            recovered = await asyncio.to_thread(status)
        finally:
            stop.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        recovered_rows = recovered["projections"]
        assert isinstance(recovered_rows, dict)
        assert all(row["lag"] == 0 for row in recovered_rows.values())
    finally:
        await platform.close()


async def test_two_concurrent_rebuilds_one_is_refused_and_the_models_equal_a_replay(
    gateway: Gateway,
) -> None:
    from infra.read_store_memory import MemoryReadStore
    from projections.replay import replay_log
    from workers.rebuild import RebuildInProgress

    platform = gateway.platform
    for n in range(3):
        await gateway.funded_key(env="live", usd="5", wallet="0x" + f"{n + 7:040x}")
    before = await platform.read_store.generations()

    async def one() -> dict[str, int]:
        return await rebuild(
            platform.app.read_log,
            platform.app.max_position,
            platform.read_store,
            page_size=5,
            drop_after=0.5,
        )

    results = await asyncio.gather(one(), one(), return_exceptions=True)
    refused = [r for r in results if isinstance(r, RebuildInProgress)]
    done = [r for r in results if isinstance(r, dict)]
    assert len(refused) == 1 and len(done) == 1, results
    assert "already running" in refused[0].message
    assert done[0] == {name: before.get(name, 0) + 1 for name in PROJECTIONS}
    assert await platform.read_store.rebuild_lease() is None  # released
    replayed = MemoryReadStore()
    await replay_log(platform.app.read_log, replayed)
    assert await platform.read_store.dump() == await replayed.dump()
    # The lease is free again: the next rebuild runs.
    assert await one() == {name: before.get(name, 0) + 2 for name in PROJECTIONS}


def test_rebuild_with_no_names_means_all_and_unknown_names_are_a_usage_error(
    services_settings: Settings,
) -> None:
    env = relay_env(services_settings)
    bad = subprocess.run(
        [sys.executable, "-m", "cli.main", "projections", "rebuild", "nosuch"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "unknown projections nosuch" in bad.stderr
    every = subprocess.run(
        [sys.executable, "-m", "cli.main", "projections", "rebuild"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert every.returncode == 0, every.stderr
    for name in PROJECTIONS:
        assert f"{name}: now served from generation" in every.stdout
