"""A real gateway for tests: the platform under test served by uvicorn on a free port, in the
test's own event loop, with relay, projector and sweeper running, and a fake upstream."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from api.app import create_app
from bootstrap.platform import Platform, open_platform
from commands.positions import wait_until_applied
from domain import topics
from domain.envelope import EventEnvelope
from domain.money import usd_to_micros
from infra.settings import Settings
from projections.catalog import PROJECTIONS
from tests.evidence import OPERATOR
from tests.fakes.upstream import FakeUpstream
from workers.embedded import running_workers

CATALOG = """
[upstreams.fake]
base_url = "{url}"
timeout_seconds = 10

[[models]]
id = "pryv-echo"
upstream = "builtin:echo"
input_price_per_million_usd = "1.00"
output_price_per_million_usd = "2.00"
context_length = 16384
max_output_tokens = 1024
test_only = true

[[models]]
id = "echo-output-priced"
upstream = "builtin:echo"
input_price_per_million_usd = "0.00"
output_price_per_million_usd = "2.00"
context_length = 16384
max_output_tokens = 1024
test_only = true

[[models]]
id = "echo-slow"
upstream = "builtin:echo"
input_price_per_million_usd = "1.00"
output_price_per_million_usd = "2.00"
context_length = 16384
max_output_tokens = 1024
test_only = true
stream_delay_ms = 30

[[models]]
id = "fake-live"
upstream = "fake"
upstream_model = "normal"
input_price_per_million_usd = "3.00"
output_price_per_million_usd = "15.00"
context_length = 16384
max_output_tokens = 256

[[models]]
id = "fake-dense"
upstream = "fake"
upstream_model = "dense"
input_price_per_million_usd = "3.00"
output_price_per_million_usd = "15.00"
context_length = 16384
max_output_tokens = 256
test_only = true

[[models]]
id = "fake-nousage"
upstream = "fake"
upstream_model = "nousage"
input_price_per_million_usd = "1.00"
output_price_per_million_usd = "2.00"
context_length = 16384
max_output_tokens = 256
test_only = true

[[models]]
id = "fake-error"
upstream = "fake"
upstream_model = "error500"
input_price_per_million_usd = "1.00"
output_price_per_million_usd = "2.00"
context_length = 16384
max_output_tokens = 256
test_only = true

[[models]]
id = "fake-midfail"
upstream = "fake"
upstream_model = "midfail"
input_price_per_million_usd = "1.00"
output_price_per_million_usd = "2.00"
context_length = 16384
max_output_tokens = 256
test_only = true
"""


def write_catalog(directory: Path, upstream: FakeUpstream) -> Path:
    path = directory / "models.toml"
    path.write_text(CATALOG.replace("{url}", upstream.url))
    return path


@dataclass
class Gateway:
    url: str
    platform: Platform

    async def settled(self) -> None:
        """Wait until every projection has applied the whole log (read-your-writes in tests)."""
        target = await asyncio.to_thread(self.platform.app.max_position)
        for name in PROJECTIONS:
            assert await wait_until_applied(self.platform.read_store, name, target, 15)

    async def settlements(self, count: int, timeout: float = 10) -> list[EventEnvelope]:
        """The log's Settled events once there are `count` of them (settlements of streams run
        after the client already has [DONE]), with read models caught up."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            log = await asyncio.to_thread(self.platform.app.read_log, 0, 1_000_000)
            settled = [e for e in log if e.topic == topics.HOLD_SETTLED]
            if len(settled) >= count or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.02)
        await self.settled()
        return settled

    async def funded_key(
        self,
        *,
        env: str = "test",
        usd: str = "10",
        models: list[str] | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        budget_micros: int | None = None,
        wallet: str | None = None,
    ) -> str:
        """A fresh key whose wallet holds `usd` of credit in the key's env; returns the token."""
        wallet = wallet or "0x" + secrets.token_hex(20)
        created = await asyncio.to_thread(
            self.platform.app.create_key,
            authorization=OPERATOR,
            wallet=wallet,
            name="t",
            env=env,
            models=models or [],
            rpm=rpm,
            tpm=tpm,
            monthly_budget_micros=budget_micros,
            expires_at=None,
            pepper=self.platform.settings.key_pepper,
        )
        if usd != "0":
            await asyncio.to_thread(
                self.platform.app.grant_credits,
                authorization=OPERATOR,
                wallet=wallet,
                env=env,
                amount_micros=usd_to_micros(usd),
                reason="test",
                granted_by="test",
                grant_ref=f"{created.issued.key_id}-grant",
            )
        await self.settled()
        return created.issued.token


@contextlib.asynccontextmanager
async def serving_app(app: Any, *, lifespan: str = "auto") -> AsyncIterator[str]:
    """Serve an ASGI app over real HTTP on 127.0.0.1 (free port), in this event loop; yields
    the base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan=lifespan, access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def serving(platform: Platform) -> AsyncIterator[str]:
    """Serve `platform` over real HTTP on 127.0.0.1 (free port); yields the base URL."""
    async with serving_app(create_app(platform), lifespan="off") as url:
        yield url


@contextlib.asynccontextmanager
async def running_gateway(settings: Settings, upstream: FakeUpstream) -> AsyncIterator[Gateway]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    catalog = write_catalog(settings.data_dir, upstream)
    platform = await open_platform(dataclasses.replace(settings, models_file=catalog))
    try:
        async with running_workers(platform), serving(platform) as url:
            yield Gateway(url, platform)
    finally:
        await platform.close()
