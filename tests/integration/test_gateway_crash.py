"""A gateway process SIGKILLed mid-request: its open holds are settled by the sweeper, once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bootstrap.platform import open_platform
from domain import topics
from domain.api_keys import parse_api_key
from infra.settings import Settings
from projections import balance, keys
from tests.fakes.upstream import FakeUpstream
from tests.gateway_harness import Gateway, write_catalog
from tests.integration.test_relay_crash import relay_env
from workers.embedded import running_workers
from workers.sweeper import HoldSweeper

REQUESTS = 8
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def gateway_process(
    settings: Settings, catalog: Path, extra_env: dict[str, str] | None = None
) -> AsyncIterator[tuple[str, int]]:
    port = free_port()
    env = {**relay_env(settings), "PRYV_MODELS_FILE": str(catalog), **(extra_env or {})}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "serve",
            "--port",
            str(port),
            "--workers",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            # Generous: imports and start-up take seconds on a loaded 2-core box.
            deadline = asyncio.get_running_loop().time() + 90
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{url}/healthz")).status_code == 200:
                        break
                assert proc.poll() is None, "gateway process died at start"
                assert asyncio.get_running_loop().time() < deadline, "gateway never became healthy"
                await asyncio.sleep(0.05)
        yield url, proc.pid
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def test_killed_gateway_leaves_holds_the_sweeper_settles_once(
    platform_settings: Settings, upstream: FakeUpstream, tmp_path: Path
) -> None:
    catalog = write_catalog(tmp_path, upstream)
    platform = await open_platform(platform_settings)
    try:
        async with running_workers(platform):
            harness = Gateway("", platform)
            key = await harness.funded_key(usd="5")
        words = " ".join(f"w{i}" for i in range(500))  # slow: 30 ms a word, ~15 s an answer

        async with (
            gateway_process(platform_settings, catalog) as (url, pid),
            httpx.AsyncClient(base_url=url, timeout=30) as http,
        ):
            requests = [
                asyncio.create_task(
                    http.post(
                        "/v1/chat/completions",
                        headers={"Authorization": f"Bearer {key}"},
                        json={
                            "model": "echo-slow",
                            "stream": True,
                            "messages": [{"role": "user", "content": words}],
                        },
                    )
                )
                for _ in range(REQUESTS)
            ]
            for _ in range(400):  # until every hold is durable in the log
                log = await asyncio.to_thread(platform.app.read_log, 0, 100_000)
                if sum(e.topic == topics.HOLD_PLACED for e in log) == REQUESTS:
                    break
                await asyncio.sleep(0.05)
            os.kill(pid, signal.SIGKILL)
            await asyncio.gather(*requests, return_exceptions=True)

        log = await asyncio.to_thread(platform.app.read_log, 0, 100_000)
        assert sum(e.topic == topics.HOLD_PLACED for e in log) == REQUESTS
        assert not any(e.topic == topics.HOLD_SETTLED for e in log), "killed mid-stream"

        async with running_workers(platform):
            await harness.settled()  # the read models know the holds (and their expiry)
            record = await keys.read_key(platform.read_store, parse_api_key(key).key_id)
            assert record is not None
            held = await balance.read_balance(platform.read_store, record.account_id, "test")
            assert held.held_micros > 0
            sweeper = HoldSweeper(platform.app, platform.read_store)
            later = datetime.now(UTC) + timedelta(minutes=16)
            assert (await sweeper.sweep_once(later)).settled == REQUESTS
            assert (await sweeper.sweep_once(later)).settled == 0  # nothing left to settle
            await harness.settled()
            after = await balance.read_balance(platform.read_store, record.account_id, "test")
            assert after.held_micros == 0 and after.debited_micros == 0

        log = await asyncio.to_thread(platform.app.read_log, 0, 100_000)
        placed = Counter(e.originator_id for e in log if e.topic == topics.HOLD_PLACED)
        settled = Counter(e.originator_id for e in log if e.topic == topics.HOLD_SETTLED)
        assert placed == settled and set(settled.values()) == {1}
        assert {e.data["outcome"] for e in log if e.topic == topics.HOLD_SETTLED} == {"expired"}
    finally:
        await platform.close()
