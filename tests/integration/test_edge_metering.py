"""The money edge: everything forwarded is held and billed (tools included), usage beyond the
hold is recorded instead of dropped, refused requests cost the server nothing, an abandoned
stream still bills its prompt, and revocation does not wait for the projector."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bootstrap.platform import open_platform
from domain import topics
from domain.api_keys import parse_api_key
from domain.envelope import EventEnvelope
from infra.settings import Settings
from projections import keys as keys_projection
from tests.evidence import OPERATOR
from tests.fakes.upstream import FakeUpstream
from tests.gateway_harness import Gateway, running_gateway, serving, write_catalog
from tests.integration.test_gateway_crash import ROOT, free_port
from tests.integration.test_relay_crash import relay_env
from tests.wallets import SigningWallet
from workers.embedded import running_workers

CATALOG_EXTRA = """
[[models]]
id = "fake-body4"
upstream = "fake"
upstream_model = "body4"
input_price_per_million_usd = "1.00"
output_price_per_million_usd = "2.00"
context_length = 200000
max_output_tokens = 256
test_only = true

[[models]]
id = "fake-body1"
upstream = "fake"
upstream_model = "body1"
input_price_per_million_usd = "1.00"
output_price_per_million_usd = "2.00"
context_length = 200000
max_output_tokens = 256
test_only = true
"""
BIG_PROMPT = " ".join(f"paragraph {i} of a long report about quarterly sales" for i in range(6000))


@pytest.fixture
def extra_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests import gateway_harness

    monkeypatch.setattr(gateway_harness, "CATALOG", gateway_harness.CATALOG + CATALOG_EXTRA)


@pytest.fixture
async def gateway(
    platform_settings: Settings, upstream: FakeUpstream, extra_catalog: None
) -> AsyncIterator[Gateway]:
    async with running_gateway(platform_settings, upstream) as running:
        yield running


@pytest.fixture
async def embedded(
    tmp_path: Path, upstream: FakeUpstream, extra_catalog: None
) -> AsyncIterator[Gateway]:
    settings = Settings(data_dir=tmp_path / "pryv", key_pepper=b"test-pepper")
    async with running_gateway(settings, upstream) as running:
        yield running


async def chat(url: str, key: str, **body: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        return await http.post(
            "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=body
        )


def cost(event: EventEnvelope) -> int:
    """What the upstream's reported usage costs at the fake-body models' prices ($1 / $2)."""
    return int(event.data["tokens_in"]) * 1 + int(event.data["tokens_out"]) * 2


async def metric(url: str, name: str) -> float:
    async with httpx.AsyncClient(base_url=url) as http:
        text = (await http.get("/metrics")).text
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, f"{name} not exported"
    return float(match.group(1))


async def test_a_200kb_tool_description_is_held_and_charged_in_full(gateway: Gateway) -> None:
    key = await gateway.funded_key()
    description = " ".join(f"step{i}: call the billing service and wait" for i in range(5000))
    assert len(description) > 200_000
    tool = {"type": "function", "function": {"name": "plan", "description": description}}
    response = await chat(
        gateway.url,
        key,
        model="fake-body4",
        messages=[{"role": "user", "content": "hi"}],
        tools=[tool],
        max_tokens=8,
    )
    assert response.status_code == 200, response.text
    [settled] = await gateway.settlements(1)
    assert settled.data["tokens_in"] > 50_000  # what the upstream reported for the tool
    assert settled.data["actual_micros"] >= 0.9 * cost(settled)
    assert not settled.data.get("shortfall_micros")


async def test_usage_beyond_the_hold_is_recorded_as_a_shortfall_and_exposed(
    gateway: Gateway,
) -> None:
    wallet = SigningWallet.create()
    key = await gateway.funded_key(wallet=wallet.address.lower())
    # body1: the upstream counts one token per byte, twice what Pryv holds for.
    response = await chat(
        gateway.url,
        key,
        model="fake-body1",
        messages=[{"role": "user", "content": "x " * 10_000}],
        max_tokens=8,
    )
    assert response.status_code == 200, response.text
    [settled] = await gateway.settlements(1)
    assert settled.data["actual_micros"] == settled.data["held_micros"]
    assert settled.data["shortfall_micros"] == cost(settled) - settled.data["held_micros"] > 0
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        page = await http.get("/api/v1/billing/ledger", headers=wallet.headers("ledger"))
    [usage] = [e for e in page.json()["data"] if e["type"] == "usage"]
    assert usage["shortfallMicros"] == settled.data["shortfall_micros"]
    assert await metric(gateway.url, "pryv_settlement_shortfalls_total") >= 1
    from cli.finance import build_report

    report = await build_report(gateway.platform, _empty_stripe_csv(gateway))
    [short] = [s for s in report.shortfalls if s.request_id == settled.data["request_id"]]
    assert short.shortfall_micros == settled.data["shortfall_micros"]
    assert report.counts()["shortfalls"] >= 1


def _empty_stripe_csv(gateway: Gateway) -> Path:
    path = gateway.platform.settings.data_dir / "stripe.csv"
    path.write_text(
        "balance_transaction_id,created_utc,currency,gross,fee,net,reporting_category,"
        "source_id,description,charge_id,payment_intent_id,dispute_id,refund_id\n"
    )
    return path


PII_WORK = ("pryv_pii_texts_total", "pryv_pii_images_total", "pryv_pii_documents_total")


async def pii_work(url: str) -> list[float]:
    return [await metric(url, name) for name in PII_WORK]


async def test_refused_requests_do_no_pii_work_and_no_fetch(embedded: Gateway) -> None:
    gateway = embedded
    wallet = "0x" + "ab" * 20
    revoked = await gateway.funded_key(wallet=wallet)
    await asyncio.to_thread(
        gateway.platform.app.revoke_key,
        authorization=OPERATOR,
        wallet=wallet,
        key_id=parse_api_key(revoked).key_id,
        reason="test",
    )
    limited = await gateway.funded_key(rpm=1)
    broke = await gateway.funded_key(usd="0")
    await gateway.settled()
    assert (await chat(gateway.url, limited, model="pryv-echo", messages=[
        {"role": "user", "content": "uses the one request of this minute"}
    ])).status_code == 200  # fmt: skip
    heavy = {
        "model": "pryv-echo",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": BIG_PROMPT},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                ],
            }
        ],
        "urls": ["https://pryv-test.invalid/page"],
    }
    assert len(BIG_PROMPT) > 300_000
    before = await pii_work(gateway.url)
    answers = [await chat(gateway.url, k, **heavy) for k in (revoked, limited, broke)]
    assert [(r.status_code, r.json()["error"]["code"]) for r in answers] == [
        (401, "inactive_api_key"),
        (429, "rate_limit_exceeded_rpm"),
        (402, "insufficient_credits"),
    ]
    assert await pii_work(gateway.url) == before  # no text analysed, no image, no fetch


async def test_a_stream_abandoned_right_after_its_headers_bills_the_prompt_once(
    gateway: Gateway,
) -> None:
    key = await gateway.funded_key()
    words = " ".join(f"w{i}" for i in range(200))
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=30) as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}", "X-Request-Id": "abandoned-1"},
            json={
                "model": "echo-slow",
                "stream": True,
                "messages": [{"role": "user", "content": words}],
            },
        ) as response,
    ):
        assert response.status_code == 200  # headers only: hang up before reading a byte
    [settled] = await gateway.settlements(1)
    assert settled.data["request_id"] == "abandoned-1"
    assert settled.data["outcome"] == "client_abort" and settled.data["estimated"] is True
    assert settled.data["tokens_in"] > 0 and settled.data["actual_micros"] > 0
    await asyncio.sleep(0.5)  # a second settlement would have been written by now
    log = await asyncio.to_thread(gateway.platform.app.read_log, 0, 100_000)
    assert [e.topic for e in log].count(topics.HOLD_SETTLED) == 1


@contextlib.asynccontextmanager
async def api_process(settings: Settings, catalog: Path) -> AsyncIterator[str]:
    """`pryv serve --no-workers`: an API process with no relay, projector or sweeper."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--no-workers"],
        env={**relay_env(settings), "PRYV_MODELS_FILE": str(catalog)},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = asyncio.get_running_loop().time() + 120
        async with httpx.AsyncClient() as http:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{url}/healthz")).status_code == 200:
                        break
                assert proc.poll() is None, "API process died at start"
                assert asyncio.get_running_loop().time() < deadline, "API process never started"
                await asyncio.sleep(0.1)
        yield url
    finally:
        proc.kill()
        proc.wait()


async def test_revocation_is_immediate_on_every_process_with_the_projector_down(
    services_settings: Settings, upstream: FakeUpstream, tmp_path: Path
) -> None:
    settings = services_settings
    catalog = write_catalog(tmp_path, upstream)
    platform = await open_platform(dataclasses.replace(settings, models_file=catalog))
    wallet = SigningWallet.create()
    try:
        async with running_workers(platform):
            key = await Gateway("", platform).funded_key(wallet=wallet.address.lower())
        key_id = parse_api_key(key).key_id
        hello = {"model": "pryv-echo", "messages": [{"role": "user", "content": "hi"}]}
        # From here on no projector runs anywhere: the key index cannot learn of the revocation.
        async with (
            api_process(settings, catalog) as first,
            api_process(settings, catalog) as second,
        ):
            for url in (first, second):
                assert (await chat(url, key, **hello)).status_code == 200
            async with httpx.AsyncClient(base_url=first, timeout=30) as http:
                deleted = await http.request(
                    "DELETE", f"/api/v1/keys/{key_id}", json=wallet.fields("revoke", key_id)
                )
            assert deleted.status_code == 200, deleted.text
            assert deleted.json()["status"] == "revoked"
            for url in (first, second):
                refused = await chat(url, key, **hello)
                assert refused.status_code == 401, refused.text
                assert refused.json()["error"]["code"] == "inactive_api_key"
        record = await keys_projection.read_key(platform.read_store, key_id)
        assert record is not None and record.status == "active"  # the index never caught up
    finally:
        await platform.close()


async def test_a_valid_key_gets_503_not_401_while_the_key_index_is_rebuilt(
    services_settings: Settings, upstream: FakeUpstream, tmp_path: Path
) -> None:
    settings = dataclasses.replace(services_settings, models_file=write_catalog(tmp_path, upstream))
    platform = await open_platform(settings)
    hello = {"model": "pryv-echo", "messages": [{"role": "user", "content": "hi"}]}
    try:
        async with running_workers(platform):
            key = await Gateway("", platform).funded_key()
        async with serving(platform) as url:
            assert (await chat(url, key, **hello)).status_code == 200
            # Redis loses every read model (a restart without persistence); no projector yet.
            client = platform.read_store.client  # type: ignore[attr-defined]
            lost = [k async for k in client.scan_iter(match=f"{settings.redis_prefix}:rm:*")]
            await client.delete(*lost)
            fresh_client = await open_platform(settings)  # a new process: nothing cached
            try:
                async with serving(fresh_client) as fresh:
                    for server in (url, fresh):  # its identity cached, and not
                        during = await chat(server, key, **hello)
                        assert during.status_code == 503, during.text
                        assert during.json()["error"]["code"] == "read_models_rebuilding"
                        assert during.headers["retry-after"] == "1"
                    async with running_workers(fresh_client):
                        deadline = asyncio.get_running_loop().time() + 60
                        while (answer := await chat(fresh, key, **hello)).status_code != 200:
                            assert answer.status_code == 503, answer.text
                            assert asyncio.get_running_loop().time() < deadline
                            await asyncio.sleep(0.1)
            finally:
                await fresh_client.close()
    finally:
        await platform.close()
