"""Upstream clients against a real HTTP server (the fake upstream) and the built-in echo model."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from domain.catalog import Catalog, ModelSpec, UpstreamSpec
from domain.pricing import Usage
from domain.tokens import estimate_prompt_tokens
from infra.upstreams import (
    EchoUpstream,
    OpenAICompatibleUpstream,
    UpstreamError,
    UpstreamRouter,
)
from tests.browser.harness import serving_asgi
from tests.fakes.upstream import FakeUpstream, running_fake_upstream

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say something."},
]


def model_spec(upstream: str = "fake", upstream_model: str = "fake-model", **kw: Any) -> ModelSpec:
    fields: dict[str, Any] = {
        "id": f"m-{upstream_model}",
        "upstream": upstream,
        "upstream_model": upstream_model,
        "input_micros_per_million": 1_000_000,
        "output_micros_per_million": 2_000_000,
        "context_length": 16384,
        "max_output_tokens": 1024,
    }
    fields.update(kw)
    return ModelSpec(**fields)


ECHO = model_spec("builtin:echo", "echo", id="pryv-echo", max_output_tokens=6, test_only=True)


def chat_body(model: str = "fake-model", *, stream: bool = False, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": MESSAGES, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    body.update(kw)
    return body


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def collect(stream: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [chunk async for chunk in stream]


def contents(chunks: list[dict[str, Any]]) -> list[str]:
    return [
        c["choices"][0]["delta"]["content"]
        for c in chunks
        if c["choices"] and c["choices"][0]["delta"].get("content")
    ]


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeUpstream]:
    with running_fake_upstream() as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeUpstream) -> FakeUpstream:
    fake_server.clear()
    return fake_server


@pytest.fixture
async def upstream(fake: FakeUpstream) -> AsyncIterator[OpenAICompatibleUpstream]:
    client = OpenAICompatibleUpstream(UpstreamSpec(name="fake", base_url=fake.url))
    yield client
    await client.close()


# --- OpenAI-compatible upstream over HTTP ---------------------------------------------------


async def test_json_completion(fake: FakeUpstream, upstream: OpenAICompatibleUpstream) -> None:
    body = chat_body(max_tokens=3)
    answer = await upstream.complete(model_spec(), body)
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == "ok1 ok2 ok3"
    assert answer["usage"] == {
        "prompt_tokens": estimate_prompt_tokens(MESSAGES),
        "completion_tokens": 3,
        "total_tokens": estimate_prompt_tokens(MESSAGES) + 3,
    }
    assert fake.received == [body]
    assert "authorization" not in fake.received_headers[0]


async def test_stream_yields_chunks_in_order_with_usage(
    fake: FakeUpstream, upstream: OpenAICompatibleUpstream
) -> None:
    chunks = await collect(upstream.stream(model_spec(), chat_body(stream=True, max_tokens=4)))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert contents(chunks) == ["ok1", " ok2", " ok3", " ok4"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 4
    assert chunks[-1]["usage"]["prompt_tokens"] == estimate_prompt_tokens(MESSAGES)
    assert len({c["id"] for c in chunks}) == 1
    assert fake.received[0]["stream_options"] == {"include_usage": True}


async def test_stream_without_include_usage_has_no_usage_chunk(
    upstream: OpenAICompatibleUpstream,
) -> None:
    body = chat_body(stream=True, max_tokens=2)
    del body["stream_options"]
    chunks = await collect(upstream.stream(model_spec(), body))
    assert contents(chunks) == ["ok1", " ok2"]
    assert all("usage" not in c for c in chunks)


async def test_nousage_model_never_reports_usage(upstream: OpenAICompatibleUpstream) -> None:
    answer = await upstream.complete(model_spec(), chat_body("fake-nousage", max_tokens=2))
    assert "usage" not in answer
    assert answer["choices"][0]["message"]["content"] == "ok1 ok2"
    chunks = await collect(upstream.stream(model_spec(), chat_body("fake-nousage", stream=True)))
    assert len(contents(chunks)) == 8
    assert all("usage" not in c for c in chunks)


@pytest.mark.parametrize("stream", [False, True])
async def test_error500_maps_to_retryable_upstream_error(
    upstream: OpenAICompatibleUpstream, stream: bool
) -> None:
    body = chat_body("fake-error500", stream=stream)
    with pytest.raises(UpstreamError) as info:
        if stream:
            await collect(upstream.stream(model_spec(), body))
        else:
            await upstream.complete(model_spec(), body)
    assert (info.value.status, info.value.message, info.value.retryable) == (500, "boom", True)
    assert info.value.usage is None


@pytest.mark.parametrize(("name", "retryable"), [("fake-error429", True), ("fake-error400", False)])
async def test_client_errors_are_not_retryable_but_429_is(
    upstream: OpenAICompatibleUpstream, name: str, retryable: bool
) -> None:
    with pytest.raises(UpstreamError) as info:
        await upstream.complete(model_spec(), chat_body(name))
    assert info.value.status == int(name[-3:])
    assert info.value.retryable is retryable


async def test_midfail_raises_after_three_content_chunks(
    upstream: OpenAICompatibleUpstream,
) -> None:
    seen: list[dict[str, Any]] = []
    with pytest.raises(UpstreamError) as info:
        async for chunk in upstream.stream(model_spec(), chat_body("fake-midfail", stream=True)):
            seen.append(chunk)
    assert contents(seen) == ["ok1", " ok2", " ok3"]
    assert info.value.status is None
    assert info.value.message == "mid-stream failure"


@pytest.mark.parametrize("stream", [False, True])
async def test_connection_refused(stream: bool) -> None:
    client = OpenAICompatibleUpstream(
        UpstreamSpec(name="down", base_url=f"http://127.0.0.1:{free_port()}/v1")
    )
    try:
        with pytest.raises(UpstreamError) as info:
            if stream:
                await collect(client.stream(model_spec(), chat_body(stream=True)))
            else:
                await client.complete(model_spec(), chat_body())
    finally:
        await client.close()
    assert info.value.status is None
    assert info.value.message == "upstream unreachable"
    assert info.value.retryable is True


async def test_read_timeout(fake: FakeUpstream) -> None:
    client = OpenAICompatibleUpstream(
        UpstreamSpec(name="fake", base_url=fake.url, timeout_seconds=0.01)
    )
    seen: list[dict[str, Any]] = []
    try:
        with pytest.raises(UpstreamError) as info:
            async for chunk in client.stream(model_spec(), chat_body("fake-slow", stream=True)):
                seen.append(chunk)
    finally:
        await client.close()
    assert info.value.status is None
    assert info.value.message == "upstream timed out"
    assert len(seen) <= 1  # at most the role chunk, sent before the first pause


async def test_early_close_cancels_upstream_stream_and_client_stays_usable(
    fake: FakeUpstream, upstream: OpenAICompatibleUpstream
) -> None:
    body = chat_body("fake-slow", stream=True, max_tokens=50)
    seen = 0
    async with contextlib.aclosing(upstream.stream(model_spec(), body)) as stream:
        async for _ in stream:
            seen += 1
            if seen == 2:
                break
    for _ in range(100):  # the fake notices the disconnect at its next chunk (<= 50 ms)
        if fake.cancelled_streams:
            break
        await asyncio.sleep(0.02)
    assert fake.cancelled_streams == 1
    assert fake.completed_streams == 0

    chunks = await collect(upstream.stream(model_spec(), chat_body(stream=True, max_tokens=2)))
    assert contents(chunks) == ["ok1", " ok2"]
    answer = await upstream.complete(model_spec(), chat_body(max_tokens=1))
    assert answer["choices"][0]["message"]["content"] == "ok1"


async def test_abandoned_stream_is_closed_when_collected(
    fake: FakeUpstream, upstream: OpenAICompatibleUpstream
) -> None:
    """A consumer that just breaks out of `async for` (no aclose) still releases the upstream,
    via the event loop's async-generator finalizer, only later: prefer contextlib.aclosing."""
    body = chat_body("fake-slow", stream=True, max_tokens=50)
    async for _ in upstream.stream(model_spec(), body):
        break
    gc.collect()
    for _ in range(100):
        if fake.cancelled_streams:
            break
        await asyncio.sleep(0.02)
    assert fake.cancelled_streams == 1


async def test_connection_is_reused_across_requests(
    fake: FakeUpstream, upstream: OpenAICompatibleUpstream
) -> None:
    await collect(upstream.stream(model_spec(), chat_body(stream=True, max_tokens=3)))
    await collect(upstream.stream(model_spec(), chat_body(stream=True, max_tokens=3)))
    await upstream.complete(model_spec(), chat_body(max_tokens=3))
    assert len(set(fake.client_addresses)) == 1


async def test_auth_header_sent_when_api_key_env_set(
    fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRYV_TEST_UPSTREAM_KEY", "sk-upstream-secret")
    client = OpenAICompatibleUpstream(
        UpstreamSpec(name="fake", base_url=fake.url, api_key_env="PRYV_TEST_UPSTREAM_KEY")
    )
    try:
        await client.complete(model_spec(), chat_body(max_tokens=1))
        await collect(client.stream(model_spec(), chat_body(stream=True, max_tokens=1)))
    finally:
        await client.close()
    assert [h["authorization"] for h in fake.received_headers] == ["Bearer sk-upstream-secret"] * 2


async def test_missing_api_key_env_fails_requests_without_leaking(
    fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRYV_TEST_UNSET_KEY", raising=False)
    client = OpenAICompatibleUpstream(
        UpstreamSpec(name="fake", base_url=fake.url, api_key_env="PRYV_TEST_UNSET_KEY")
    )
    try:
        with pytest.raises(UpstreamError) as info:
            await client.complete(model_spec(), chat_body())
    finally:
        await client.close()
    assert info.value.retryable is False
    assert fake.received == []


# --- SSE and response parsing edge cases (scripted responses) --------------------------------


@contextlib.asynccontextmanager
async def scripted(
    status: int, content: bytes, content_type: str
) -> AsyncIterator[OpenAICompatibleUpstream]:
    """A client of a real local server that answers `content`, sent in 7-byte pieces so that
    lines (and CRLF pairs) are split across reads."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        headers = [(b"content-type", content_type.encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for start in range(0, len(content), 7):
            piece = content[start : start + 7]
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async with serving_asgi(app) as url:  # type: ignore[arg-type]
        client = OpenAICompatibleUpstream(UpstreamSpec(name="scripted", base_url=f"{url}/v1"))
        try:
            yield client
        finally:
            await client.close()


async def scripted_stream(content: bytes, content_type: str = "text/event-stream") -> Any:
    async with scripted(200, content, content_type) as client:
        return await collect(client.stream(model_spec(), chat_body(stream=True)))


async def test_sse_comments_fields_crlf_and_multiline_data() -> None:
    content = (
        b": keep-alive\r\n\r\n"
        b'event: message\r\nid: 1\r\ndata: {"choices": [{"index": 0,\r\n'
        b'data: "delta": {"content": "hi"}, "finish_reason": null}]}\r\n\r\n'
        b'data:{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
        b"retry: 100\n\n"
        b"data: [DONE]\n\n"
        b'data: {"ignored": "after DONE"}\n\n'
    )
    chunks = await scripted_stream(content)
    assert contents(chunks) == ["hi"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert len(chunks) == 2


async def test_sse_without_done_is_tolerated_once_finished() -> None:
    content = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
    chunks = await scripted_stream(content)  # no trailing blank line either
    assert chunks[0]["choices"][0]["finish_reason"] == "stop"


async def test_sse_cut_off_before_finish_is_an_error() -> None:
    content = b'data: {"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}\n\n'
    with pytest.raises(UpstreamError, match="ended unexpectedly"):
        await scripted_stream(content)


@pytest.mark.parametrize("data", [b"data: {not json\n\n", b"data: [1, 2]\n\n"])
async def test_sse_malformed_event(data: bytes) -> None:
    with pytest.raises(UpstreamError, match="malformed") as info:
        await scripted_stream(data)
    assert info.value.retryable is False


async def test_sse_error_event_carries_code_and_usage() -> None:
    content = (
        b'data: {"error": {"message": "overloaded", "code": 503},'
        b' "usage": {"prompt_tokens": 7, "completion_tokens": 0}}\n\n'
    )
    with pytest.raises(UpstreamError) as info:
        await scripted_stream(content)
    assert (info.value.status, info.value.message, info.value.retryable) == (
        503,
        "overloaded",
        True,
    )
    assert info.value.usage == Usage(prompt_tokens=7, completion_tokens=0)


async def test_stream_answered_with_json_error_body() -> None:
    with pytest.raises(UpstreamError, match="nope"):
        await scripted_stream(b'{"error": {"message": "nope"}}', "application/json")
    with pytest.raises(UpstreamError, match="did not stream"):
        await scripted_stream(b'{"choices": []}', "application/json")


async def test_complete_invalid_json_and_non_openai_error_bodies() -> None:
    cases: list[tuple[int, bytes, str]] = [
        (200, b"<html>oops</html>", "invalid JSON"),
        (200, b"[1]", "unexpected response"),
        (502, b"<html>Bad Gateway</html>", "upstream returned HTTP 502"),
        (400, b'{"object": "error", "message": "too long", "code": 400}', "too long"),
        (422, b'{"detail": "bad field"}', "bad field"),
        (400, b'{"error": "plain string"}', "plain string"),
    ]
    for status, content, expected in cases:
        async with scripted(status, content, "application/json") as client:
            with pytest.raises(UpstreamError) as info:
                await client.complete(model_spec(), chat_body())
        assert expected in info.value.message
        assert info.value.status == status


async def test_error_with_usage_is_reported() -> None:
    content = b'{"error": {"message": "content filtered"}, "usage": {"prompt_tokens": 12}}'
    async with scripted(400, content, "application/json") as client:
        with pytest.raises(UpstreamError) as info:
            await client.complete(model_spec(), chat_body())
    assert info.value.usage == Usage(prompt_tokens=12, completion_tokens=0)


# --- the built-in echo model -----------------------------------------------------------------


def echo_body(text: Any, **kw: Any) -> dict[str, Any]:
    messages = [
        {"role": "system", "content": "ignored system words"},
        {"role": "user", "content": "an earlier question"},
        {"role": "assistant", "content": "an earlier answer"},
        {"role": "user", "content": text},
    ]
    return {"model": "echo", "messages": messages, **kw}


async def test_echo_answers_last_user_message_with_exact_usage() -> None:
    body = echo_body("one two  three")
    answer = await EchoUpstream().complete(ECHO, body)
    assert answer["id"].startswith("chatcmpl-echo-")
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "echo"
    assert answer["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "one two three"},
            "finish_reason": "stop",
        }
    ]
    prompt = estimate_prompt_tokens(body["messages"])
    assert answer["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": 3,
        "total_tokens": prompt + 3,
    }


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"max_tokens": 2}, "a b"),
        ({"max_completion_tokens": 3}, "a b c"),
        ({}, "a b c d e f"),  # the model's max_output_tokens (6)
    ],
)
async def test_echo_truncates(extra: dict[str, Any], expected: str) -> None:
    answer = await EchoUpstream().complete(ECHO, echo_body("a b c d e f g h", **extra))
    assert answer["choices"][0]["message"]["content"] == expected
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == len(expected.split())


async def test_echo_multimodal_and_empty() -> None:
    content = [
        {"type": "text", "text": "look at"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "this"},
    ]
    answer = await EchoUpstream().complete(ECHO, echo_body(content))
    assert answer["choices"][0]["message"]["content"] == "look at this"
    body = echo_body("   ")
    answer = await EchoUpstream().complete(ECHO, body)
    assert answer["choices"][0]["message"]["content"] == "(empty)"
    assert answer["usage"]["completion_tokens"] == 1
    assert answer["usage"]["prompt_tokens"] == estimate_prompt_tokens(body["messages"])


@pytest.mark.parametrize("include_usage", [False, True])
async def test_echo_stream(include_usage: bool) -> None:
    body = echo_body("alpha beta gamma", max_tokens=2, stream=True)
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    model = model_spec("builtin:echo", "echo", stream_delay_ms=1)
    chunks = await collect(EchoUpstream().stream(model, body))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert contents(chunks) == ["alpha", " beta"]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({(c["id"], c["created"]) for c in chunks}) == 1
    finish = chunks[3] if include_usage else chunks[-1]
    assert finish["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "length"}
    if include_usage:
        assert len(chunks) == 5
        assert chunks[-1]["choices"] == []
        prompt = estimate_prompt_tokens(body["messages"])
        assert chunks[-1]["usage"] == {
            "prompt_tokens": prompt,
            "completion_tokens": 2,
            "total_tokens": prompt + 2,
        }
    else:
        assert len(chunks) == 4
        assert all("usage" not in c for c in chunks)


@pytest.mark.parametrize("stream", [False, True])
async def test_echo_simulated_error(stream: bool) -> None:
    body = echo_body([{"type": "text", "text": "please [[echo:error]] now"}], stream=stream)
    seen: list[dict[str, Any]] = []
    with pytest.raises(UpstreamError) as info:
        if stream:
            async for chunk in EchoUpstream().stream(ECHO, body):
                seen.append(chunk)
        else:
            await EchoUpstream().complete(ECHO, body)
    assert seen == []
    assert (info.value.status, info.value.message, info.value.retryable, info.value.usage) == (
        500,
        "echo: simulated upstream failure",
        True,
        None,
    )


# --- routing ---------------------------------------------------------------------------------


async def test_router_picks_echo_and_shares_one_client_per_upstream(fake: FakeUpstream) -> None:
    with running_fake_upstream() as other:
        catalog = Catalog(
            models=(),
            upstreams={
                "fake": UpstreamSpec(name="fake", base_url=fake.url),
                "other": UpstreamSpec(name="other", base_url=other.url),
            },
        )
        router = UpstreamRouter(catalog)
        a, b = model_spec("fake", "fake-a"), model_spec("fake", "fake-b")
        elsewhere = model_spec("other", "x")
        assert isinstance(router.for_model(ECHO).inner, EchoUpstream)
        assert router.for_model(a) is router.for_model(b)
        assert isinstance(router.for_model(a).inner, OpenAICompatibleUpstream)
        assert router.for_model(elsewhere) is not router.for_model(a)

        await router.for_model(a).complete(a, chat_body("fake-a", max_tokens=1))
        await router.for_model(elsewhere).complete(elsewhere, chat_body("x", max_tokens=1))
        assert [r["model"] for r in other.received] == ["x"]
        assert [r["model"] for r in fake.received] == ["fake-a"]

        with pytest.raises(ValueError, match="unknown upstream"):
            router.for_model(model_spec("nowhere", "y"))

        client = router.for_model(a).inner
        assert isinstance(client, OpenAICompatibleUpstream)
        await router.close()
        with pytest.raises(RuntimeError):  # a closed client refuses requests
            await client.complete(a, chat_body("fake-a"))
