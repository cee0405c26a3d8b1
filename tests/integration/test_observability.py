"""Health, readiness, metrics and structured logs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from bootstrap.platform import open_platform
from infra.log_format import JsonLogFormatter
from infra.settings import Settings
from tests.evidence import OPERATOR
from tests.fakes.upstream import FakeUpstream
from tests.gateway_harness import Gateway, running_gateway, serving


@pytest.fixture
async def gateway(platform_settings: Settings, upstream: FakeUpstream) -> AsyncIterator[Gateway]:
    async with running_gateway(platform_settings, upstream) as running:
        yield running


async def test_health_ready_and_metrics(gateway: Gateway) -> None:
    key = await gateway.funded_key()
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"
        assert set(ready.json()["checks"]) == {"event_store", "bus", "read_store", "projection_lag"}
        chat = await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={
                "model": "pryv-echo",
                "max_tokens": 2,
                "messages": [{"role": "user", "content": "hi there"}],
            },
        )
        assert chat.status_code == 200
        await http.post("/v1/chat/completions", json={})  # a 401
        await gateway.settlements(1)
        text = (await http.get("/metrics")).text
    assert (
        'pryv_http_requests_total{method="POST",route="/v1/chat/completions",status="200"} 1.0'
        in text
    )
    assert 'route="/v1/chat/completions",status="401"' in text
    assert "pryv_http_request_duration_seconds_bucket" in text
    assert "pryv_group_commit_batch_size_count" in text
    assert 'pryv_projection_lag_events{projection="balance"} 0.0' in text
    assert "pryv_relay_lag_events 0.0" in text
    assert "pryv_holds_open 0.0" in text
    # the chat's prompt went through NER (PII redaction is on by default): one text at least
    texts = float(text.split("\npryv_pii_ner_texts_total ")[1].split()[0])
    batches = float(text.split("\npryv_pii_ner_batches_total ")[1].split()[0])
    assert texts >= 1 and 1 <= batches <= texts


async def test_readyz_fails_while_projections_lag(services_settings: Settings) -> None:
    """No projector running and events in the log beyond the bound: not ready, and why."""
    import dataclasses

    platform = await open_platform(dataclasses.replace(services_settings, ready_max_lag=2))
    try:
        for n in range(5):
            await asyncio.to_thread(
                platform.app.grant_credits,
                authorization=OPERATOR,
                wallet="0x" + "cd" * 20,
                env="live",
                amount_micros=1,
                reason="t",
                granted_by="t",
                grant_ref=f"ready-{n}",
            )
        async with serving(platform) as url, httpx.AsyncClient(base_url=url) as http:
            ready = await http.get("/readyz")
        assert ready.status_code == 503
        lag = ready.json()["checks"]["projection_lag"]
        assert lag["ok"] is False and lag["lag"] > lag["bound"] == 2
    finally:
        await platform.close()


async def test_access_log_is_json_with_request_id_and_no_secrets(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    key = await gateway.funded_key()
    secret_prompt = "my card is 4111 1111 1111 1111"
    with caplog.at_level(logging.INFO):
        async with httpx.AsyncClient(base_url=gateway.url) as http:
            response = await http.post(
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}", "X-Request-Id": "trace-77"},
                json={
                    "model": "pryv-echo",
                    "messages": [{"role": "user", "content": secret_prompt}],
                },
            )
    assert response.status_code == 200
    formatter = JsonLogFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    access = [json.loads(line) for line in lines if '"logger":"pryv.access"' in line]
    [entry] = [a for a in access if a.get("request_id") == "trace-77"]
    assert entry["route"] == "/v1/chat/completions" and entry["status"] == 200
    assert entry["method"] == "POST" and entry["duration_ms"] > 0
    everything = "\n".join(lines)
    assert "4111" not in everything and key not in everything and key[-12:] not in everything


async def test_a_sampled_access_log_keeps_every_refusal(
    platform_settings: Settings, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """PRYV_ACCESS_LOG_SAMPLE=0: no line for a success, one for each 4xx; metrics count all."""
    settings = dataclasses.replace(platform_settings, access_log_sample=0.0)
    async with running_gateway(settings, upstream) as gateway:
        key = await gateway.funded_key()
        body = {"model": "pryv-echo", "messages": [{"role": "user", "content": "hi"}]}
        with caplog.at_level(logging.INFO, logger="pryv.access"):
            async with httpx.AsyncClient(base_url=gateway.url) as http:
                ok = await http.post(
                    "/v1/chat/completions",
                    headers={"Authorization": f"Bearer {key}", "X-Request-Id": "kept-out"},
                    json=body,
                )
                refused = await http.post(
                    "/v1/chat/completions",
                    headers={"Authorization": "Bearer nope", "X-Request-Id": "kept-in"},
                    json=body,
                )
    assert (ok.status_code, refused.status_code) == (200, 401)
    logged = [getattr(r, "pryv", {}) for r in caplog.records if r.name == "pryv.access"]
    assert [entry.get("request_id") for entry in logged] == ["kept-in"]


async def test_a_redis_that_stops_answering_times_out_from_inside() -> None:
    """A Redis that accepts connections and never replies: a read fails by the client's own
    socket timeout, so no caller has to cancel a Redis wait from outside (redis-py#2028)."""
    import redis.exceptions

    from infra.read_store_redis import RedisReadStore

    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # read nothing, answer nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = RedisReadStore.from_url(f"redis://127.0.0.1:{port}/0", "silent")
    try:
        with pytest.raises(redis.exceptions.TimeoutError):
            await asyncio.wait_for(store.position("balance"), 60)  # only a safety net
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await store.close()


async def test_redis_commands_skip_redis_pys_per_call_deprecation_check(
    services_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read store's pool calls redis-py's `get_connection` without the wrapper that
    inspects every call's arguments (a measured 4% of the API's CPU)."""
    import redis.utils

    from infra.read_store_redis import RedisReadStore

    def inspected(*args: object, **kwargs: object) -> dict[str, object]:
        raise AssertionError("redis-py's deprecation check ran")

    store = RedisReadStore.from_url(services_settings.redis_url, "nocheck")
    try:
        await store.position("balance")  # the client and its connection are made: checked
        monkeypatch.setattr(redis.utils, "_get_filterable_args", inspected)
        for _ in range(3):  # each command on a pooled connection: not checked
            assert (await store.position("balance")).position == 0
    finally:
        await store.close()
