"""Rate limits are per key, not per process: two API processes sharing Redis enforce one RPM."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bootstrap.platform import open_platform
from infra.settings import Settings
from tests.fakes.upstream import FakeUpstream, running_fake_upstream
from tests.gateway_harness import Gateway, write_catalog
from tests.integration.test_gateway_crash import gateway_process
from workers.embedded import running_workers

HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with running_fake_upstream() as fake:
        yield fake


async def test_rpm_holds_across_two_api_processes(
    services_settings: Settings, tmp_path: Path, upstream: FakeUpstream
) -> None:
    settings = services_settings
    catalog = write_catalog(tmp_path, upstream)
    platform = await open_platform(settings)
    try:
        async with running_workers(platform):
            key = await Gateway("", platform).funded_key(rpm=10, tpm=1_000_000)
            async with contextlib.AsyncExitStack() as stack:
                first = await stack.enter_async_context(gateway_process(settings, catalog))
                second = await stack.enter_async_context(gateway_process(settings, catalog))
                async with httpx.AsyncClient(timeout=30) as http:
                    responses = await asyncio.gather(
                        *(
                            http.post(
                                f"{url}/v1/chat/completions",
                                headers={"Authorization": f"Bearer {key}"},
                                json={"model": "pryv-echo", "messages": HELLO, "max_tokens": 1},
                            )
                            for url in [first[0], second[0]] * 15
                        )
                    )
    finally:
        await platform.close()
    by_process = Counter((r.url.port, r.status_code) for r in responses)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 10, 429: 20}, by_process  # 10 in total, not 10 per process
    refused = [r for r in responses if r.status_code == 429]
    assert {r.json()["error"]["code"] for r in refused} == {"rate_limit_exceeded_rpm"}
    assert all(r.headers["x-ratelimit-remaining-rpm"] == "0" for r in refused)
    # both processes answered (each saw its share of the limit, not a limit of its own)
    assert len({r.url.port for r in responses}) == 2
