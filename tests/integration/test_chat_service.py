"""gateway.ChatService without FastAPI: the same request through the service and through
HTTP places the same hold and settles the same way (JSON, streaming, abort, upstream errors,
refusals), on the embedded default and on PostgreSQL/Redis/NATS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from domain import topics
from domain.envelope import EventEnvelope
from domain.errors import ErrorKind, PryvError
from domain.tokens import estimate_text_tokens
from gateway.authentication import KeyIdentityCache, authenticate_key
from gateway.chat import ChatService, ChatStream, Completion
from gateway.chat_request import ChatCompletionRequest
from infra.settings import Settings
from privacy.account_defaults import AccountSettingsCache
from privacy.pipeline import PrivacyFilter
from projections.settings import read_settings
from tests.fakes.upstream import FakeUpstream
from tests.gateway_harness import Gateway, running_gateway

HELLO = [{"role": "user", "content": "hello there general kenobi, mail jane.doe@example.com"}]
# What a settlement says about the money and the tokens; ids and times differ per request.
COMPARED = ("outcome", "held_micros", "actual_micros", "tokens_in", "tokens_out", "estimated")


@pytest.fixture
async def gateway(platform_settings: Settings, upstream: FakeUpstream) -> AsyncIterator[Gateway]:
    async with running_gateway(platform_settings, upstream) as running:
        yield running


def chat_service(gateway: Gateway) -> ChatService:
    platform = gateway.platform

    async def defaults(account_id: str) -> dict[str, object]:
        return await read_settings(platform.read_store, account_id)

    return ChatService(platform, PrivacyFilter(), AccountSettingsCache(defaults))


async def settlement(gateway: Gateway, request_id: str) -> dict[str, Any]:
    """The Settled event of `request_id` once it is in the log (settlements run as tasks)."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        log = await asyncio.to_thread(gateway.platform.app.read_log, 0, 1_000_000)
        found: list[EventEnvelope] = [
            e for e in log if e.topic == topics.HOLD_SETTLED and e.data["request_id"] == request_id
        ]
        if found:
            assert len(found) == 1, "settled once"
            return {field: found[0].data[field] for field in COMPARED}
        assert asyncio.get_running_loop().time() < deadline, f"{request_id} never settled"
        await asyncio.sleep(0.05)


async def over_http(gateway: Gateway, key: str, request_id: str, body: dict[str, Any]) -> str:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        response = await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}", "X-Request-Id": request_id},
            json=body,
        )
    return response.text


async def test_json_completion_matches_http(gateway: Gateway) -> None:
    key = await gateway.funded_key(env="live")
    identity = await authenticate_key(gateway.platform, key, KeyIdentityCache())
    body = {"model": "fake-live", "messages": HELLO}
    result = await chat_service(gateway).complete(
        identity, ChatCompletionRequest.model_validate(body), "svc-json"
    )
    assert isinstance(result, Completion)
    assert result.body["object"] == "chat.completion" and result.body["model"] == "fake-live"
    assert result.metadata["X-Pryv-PII-Redacted"] == "EMAIL_ADDRESS=1"
    await over_http(gateway, key, "http-json", body)
    via_service = await settlement(gateway, "svc-json")
    assert via_service["outcome"] == "ok" and via_service["actual_micros"] > 0
    assert via_service == await settlement(gateway, "http-json")


async def test_stream_matches_http(gateway: Gateway) -> None:
    key = await gateway.funded_key(env="live")
    identity = await authenticate_key(gateway.platform, key, KeyIdentityCache())
    body = {"model": "fake-live", "messages": HELLO, "stream": True}
    stream = await chat_service(gateway).complete(
        identity, ChatCompletionRequest.model_validate(body), "svc-stream"
    )
    assert isinstance(stream, ChatStream)
    chunks = [chunk async for chunk in stream]
    assert chunks and all(c["model"] == "fake-live" for c in chunks)
    assert all("usage" not in c for c in chunks)  # not asked for: stripped
    http_text = await over_http(gateway, key, "http-stream", body)
    assert http_text.rstrip().endswith("data: [DONE]")
    via_service = await settlement(gateway, "svc-stream")
    assert via_service["outcome"] == "ok" and via_service["estimated"] is False
    assert via_service == await settlement(gateway, "http-stream")


async def test_closing_a_stream_early_bills_what_was_streamed(gateway: Gateway) -> None:
    key = await gateway.funded_key()
    identity = await authenticate_key(gateway.platform, key, KeyIdentityCache())
    words = " ".join(f"w{i}" for i in range(200))
    body = {"model": "echo-slow", "stream": True, "messages": [{"role": "user", "content": words}]}
    stream = await chat_service(gateway).complete(
        identity, ChatCompletionRequest.model_validate(body), "svc-abort"
    )
    assert isinstance(stream, ChatStream)
    received: list[str] = []
    async for chunk in stream:
        received += [c["delta"].get("content", "") for c in chunk["choices"]]
        if len([r for r in received if r.strip()]) >= 10:
            break
    await stream.aclose()
    stream.abandon()  # after aclose: a no-op, never a second settlement
    settled = await settlement(gateway, "svc-abort")
    assert settled["outcome"] == "client_abort" and settled["estimated"] is True
    assert settled["tokens_out"] == estimate_text_tokens("".join(received))
    assert 0 < settled["actual_micros"] < settled["held_micros"]


async def test_an_abandoned_stream_bills_the_prompt_like_http(gateway: Gateway) -> None:
    """Never iterated (the caller left right after the headers): the upstream was called, so
    the prompt is billed — what the HTTP door does for a client that hangs up at once."""
    key = await gateway.funded_key(env="live")
    identity = await authenticate_key(gateway.platform, key, KeyIdentityCache())
    body = {"model": "fake-live", "messages": HELLO, "stream": True}
    stream = await chat_service(gateway).complete(
        identity, ChatCompletionRequest.model_validate(body), "svc-abandon"
    )
    assert isinstance(stream, ChatStream)
    stream.abandon()
    settled = await settlement(gateway, "svc-abandon")
    assert settled["outcome"] == "client_abort" and settled["tokens_out"] == 0
    assert settled["tokens_in"] > 0 and settled["actual_micros"] > 0


async def test_upstream_errors_match_http(gateway: Gateway) -> None:
    key = await gateway.funded_key()
    identity = await authenticate_key(gateway.platform, key, KeyIdentityCache())
    service = chat_service(gateway)
    failing = {"model": "fake-error", "messages": HELLO}
    with pytest.raises(PryvError) as failed:
        await service.complete(identity, ChatCompletionRequest.model_validate(failing), "svc-502")
    assert (failed.value.kind, failed.value.code) == (ErrorKind.UPSTREAM, "upstream_error")
    await over_http(gateway, key, "http-502", failing)
    assert await settlement(gateway, "svc-502") == await settlement(gateway, "http-502")

    midway = {"model": "fake-midfail", "messages": HELLO, "stream": True}
    stream = await service.complete(
        identity, ChatCompletionRequest.model_validate(midway), "svc-mid"
    )
    assert isinstance(stream, ChatStream)
    got: list[dict[str, Any]] = []
    with pytest.raises(PryvError) as mid:
        async for chunk in stream:
            got.append(chunk)
    assert got and mid.value.code == "upstream_error"
    http_text = await over_http(gateway, key, "http-mid", midway)
    last = [line for line in http_text.splitlines() if line.startswith("data: ")][-1]
    assert json.loads(last[6:])["error"]["code"] == "upstream_error"
    settled = await settlement(gateway, "svc-mid")
    assert settled["outcome"] == "upstream_error" and settled["tokens_out"] > 0
    assert settled == await settlement(gateway, "http-mid")


async def test_refusals_hold_nothing(gateway: Gateway) -> None:
    key = await gateway.funded_key(env="live", usd="0")
    identity = await authenticate_key(gateway.platform, key, KeyIdentityCache())
    body = ChatCompletionRequest.model_validate({"model": "fake-live", "messages": HELLO})
    with pytest.raises(PryvError) as refused:
        await chat_service(gateway).complete(identity, body, "svc-broke")
    assert (refused.value.kind, refused.value.code) == (
        ErrorKind.PAYMENT_REQUIRED,
        "insufficient_credits",
    )
    assert refused.value.metadata["X-Request-Id"] == "svc-broke"
    log = await asyncio.to_thread(gateway.platform.app.read_log, 0, 1_000_000)
    assert not [e for e in log if e.topic == topics.HOLD_PLACED]


async def test_a_request_with_nothing_private_to_do_is_admitted_without_a_precheck(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redaction off and no documents: admission alone (one Redis round trip) refuses or
    admits, and counts the request against RPM once; with redaction on, the precheck runs."""
    gate = gateway.platform.meter._gate
    prechecks: list[object] = []
    original = gate.precheck

    async def counted(request: Any) -> Any:
        prechecks.append(request)
        return await original(request)

    monkeypatch.setattr(gate, "precheck", counted)
    service = chat_service(gateway)
    key = await gateway.funded_key(env="live", usd="5", rpm=1)
    identity = await authenticate_key(gateway.platform, key, KeyIdentityCache())
    plain = {"model": "fake-live", "messages": HELLO, "skip_pii_redaction": True}
    answer = await service.complete(identity, ChatCompletionRequest.model_validate(plain), "np-1")
    assert isinstance(answer, Completion) and prechecks == []
    with pytest.raises(PryvError) as limited:  # the one request RPM allows was counted
        await service.complete(identity, ChatCompletionRequest.model_validate(plain), "np-2")
    assert limited.value.code == "rate_limit_exceeded_rpm"

    broke = await authenticate_key(
        gateway.platform, await gateway.funded_key(env="live", usd="0"), KeyIdentityCache()
    )
    with pytest.raises(PryvError) as refused:
        await service.complete(broke, ChatCompletionRequest.model_validate(plain), "np-3")
    assert refused.value.code == "insufficient_credits" and prechecks == []
    redacted = {"model": "fake-live", "messages": HELLO}
    with pytest.raises(PryvError):
        await service.complete(broke, ChatCompletionRequest.model_validate(redacted), "np-4")
    assert len(prechecks) == 1
