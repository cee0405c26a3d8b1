"""The public gateway over both deployments, driven by the official openai SDK and raw HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from domain import topics
from domain.api_keys import parse_api_key
from domain.pricing import Usage, cost_micros
from domain.tokens import estimate_prompt_tokens, estimate_text_tokens
from infra.settings import Settings
from projections import balance, ledger
from tests.evidence import OPERATOR
from tests.fakes.upstream import FakeUpstream
from tests.gateway_harness import Gateway, running_gateway

HELLO = [{"role": "user", "content": "hello there general kenobi"}]


@pytest.fixture
async def gateway(platform_settings: Settings, upstream: FakeUpstream) -> AsyncIterator[Gateway]:
    async with running_gateway(platform_settings, upstream) as running:
        yield running


def sdk(gateway: Gateway, key: str) -> AsyncOpenAI:
    return AsyncOpenAI(api_key=key, base_url=f"{gateway.url}/v1", max_retries=0)


async def account_balance(gateway: Gateway, key: str) -> balance.Balance:
    record = await gateway_key(gateway, key)
    return await balance.read_balance(gateway.platform.read_store, record.account_id, record.env)


async def gateway_key(gateway: Gateway, key: str):  # type: ignore[no-untyped-def]
    from projections import keys

    record = await keys.read_key(gateway.platform.read_store, parse_api_key(key).key_id)
    assert record is not None
    return record


async def test_sdk_json_and_streaming_calls(gateway: Gateway) -> None:
    key = await gateway.funded_key()
    client = sdk(gateway, key)
    completion = await client.chat.completions.create(
        model="pryv-echo",
        messages=HELLO,
        max_tokens=3,  # type: ignore[arg-type]
    )
    assert completion.choices[0].message.content == "hello there general"
    assert completion.model == "pryv-echo"
    assert completion.usage is not None and completion.usage.completion_tokens == 3

    stream = await client.chat.completions.create(
        model="pryv-echo",
        messages=HELLO,
        stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert text == "hello there general kenobi"
    assert usage is not None and usage.completion_tokens == 4

    models = await client.models.list()
    assert [m.id for m in models.data] == [
        "pryv-echo",
        "echo-output-priced",
        "echo-slow",
        "fake-dense",
        "fake-nousage",
        "fake-error",
        "fake-midfail",
    ]
    assert (await client.models.retrieve("pryv-echo")).id == "pryv-echo"


async def test_sdk_gets_typed_errors(gateway: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError) as missing:
        await sdk(gateway, "pryv_test_nonsense").chat.completions.create(
            model="pryv-echo",
            messages=HELLO,  # type: ignore[arg-type]
        )
    assert missing.value.status_code == 401
    assert missing.value.code == "invalid_api_key"

    broke = await gateway.funded_key(usd="0")
    with pytest.raises(openai.APIStatusError) as unpaid:
        await sdk(gateway, broke).chat.completions.create(
            model="pryv-echo",
            messages=HELLO,  # type: ignore[arg-type]
        )
    assert unpaid.value.status_code == 402 and unpaid.value.code == "insufficient_credits"

    test_key = await gateway.funded_key()
    with pytest.raises(openai.PermissionDeniedError) as live_model:
        await sdk(gateway, test_key).chat.completions.create(
            model="fake-live",
            messages=HELLO,  # type: ignore[arg-type]
        )
    assert live_model.value.code == "model_not_allowed"

    narrow = await gateway.funded_key(models=["echo-slow"])
    with pytest.raises(openai.PermissionDeniedError) as entitlement:
        await sdk(gateway, narrow).chat.completions.create(
            model="pryv-echo",
            messages=HELLO,  # type: ignore[arg-type]
        )
    assert entitlement.value.code == "model_not_allowed"

    capped = await gateway.funded_key(budget_micros=10)  # credit enough, budget not
    with pytest.raises(openai.APIStatusError) as over_budget:
        await sdk(gateway, capped).chat.completions.create(
            model="pryv-echo",
            messages=HELLO,  # type: ignore[arg-type]
        )
    assert over_budget.value.status_code == 402 and over_budget.value.code == "budget_exceeded"

    limited = await gateway.funded_key(rpm=1)
    client = sdk(gateway, limited)
    await client.chat.completions.create(model="pryv-echo", messages=HELLO)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError) as limited_error:
        await client.chat.completions.create(model="pryv-echo", messages=HELLO)  # type: ignore[arg-type]
    assert limited_error.value.code == "rate_limit_exceeded_rpm"
    assert int(limited_error.value.response.headers["retry-after"]) >= 1

    with pytest.raises(openai.BadRequestError) as bad_model:
        await client.chat.completions.create(model="no-such", messages=HELLO)  # type: ignore[arg-type]
    assert bad_model.value.code == "invalid_model"


async def test_rate_limit_headers_and_request_id_in_ledger(gateway: Gateway) -> None:
    key = await gateway.funded_key(rpm=10, tpm=100_000)
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}", "X-Request-Id": "order-42"},
            json={"model": "pryv-echo", "messages": HELLO, "max_tokens": 2},
        )
        assert response.status_code == 200, response.text
        assert response.headers["x-request-id"] == "order-42"
        assert response.headers["x-ratelimit-limit-rpm"] == "10"
        assert response.headers["x-ratelimit-remaining-rpm"] == "9"
        assert response.headers["x-ratelimit-limit-tpm"] == "100000"
        assert int(response.headers["x-ratelimit-remaining-tpm"]) < 100_000
        assert 0 < int(response.headers["x-ratelimit-reset-rpm"]) <= 60
        again = await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}", "X-Request-Id": "order-42"},
            json={"model": "pryv-echo", "messages": HELLO, "max_tokens": 2},
        )
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "duplicate_request_id"
        assert again.headers["x-ratelimit-limit-rpm"] == "10"  # refusals carry them too
    await gateway.settlements(1)
    record = await gateway_key(gateway, key)
    entries = await ledger.ledger_page(
        gateway.platform.read_store, record.account_id, before=None, limit=10
    )
    usage_entries = [e for e in entries if e["type"] == "usage"]
    assert [(e["request_id"], e["model"], e["outcome"]) for e in usage_entries] == [
        ("order-42", "pryv-echo", "ok")
    ]
    assert usage_entries[0]["tokens_out"] == 2 and usage_entries[0]["amount_micros"] < 0
    log = await asyncio.to_thread(gateway.platform.app.read_log, 0, 10_000)
    assert [e.topic for e in log].count(topics.HOLD_SETTLED) == 1  # the 409 was never charged


async def test_missing_and_revoked_keys(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        missing = await http.post(
            "/v1/chat/completions", json={"model": "pryv-echo", "messages": HELLO}
        )
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "missing_api_key"
        key = await gateway.funded_key()
        parsed = parse_api_key(key)
        record = await gateway_key(gateway, key)
        ok = await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "pryv-echo", "messages": HELLO},
        )
        assert ok.status_code == 200
        result = await asyncio.to_thread(
            gateway.platform.app.revoke_key,
            authorization=OPERATOR,
            wallet=record.wallet,
            key_id=parsed.key_id,
            reason="test",
        )
        from commands.positions import wait_until_applied

        assert result.position is not None
        assert await wait_until_applied(gateway.platform.read_store, "keys", result.position, 5)
        # the identity is cached in-process; revocation still wins at once
        revoked = await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "pryv-echo", "messages": HELLO},
        )
        assert revoked.status_code == 401
        assert revoked.json()["error"]["code"] == "inactive_api_key"
        models = await http.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert models.status_code == 401


async def test_bad_requests_are_400_never_500(gateway: Gateway) -> None:
    key = await gateway.funded_key()
    auth = {"Authorization": f"Bearer {key}"}
    cases = [
        (b"{not json", "invalid_json"),
        (json.dumps({"model": "pryv-echo"}).encode(), "validation_error"),
        (json.dumps({"model": "pryv-echo", "messages": []}).encode(), "validation_error"),
        (
            json.dumps(
                {"model": "pryv-echo", "messages": [{"role": "wizard", "content": "x"}]}
            ).encode(),
            "validation_error",
        ),
        (
            json.dumps({"model": "pryv-echo", "messages": HELLO, "max_tokens": 0}).encode(),
            "validation_error",
        ),
        (
            json.dumps(
                {"model": "pryv-echo", "messages": HELLO, "pii_entities": ["NOPE"]}
            ).encode(),
            "validation_error",
        ),
        (
            json.dumps(
                {
                    "model": "pryv-echo",
                    "messages": HELLO,
                    "pii_entities": ["PERSON"],
                    "piiEntities": ["PERSON"],
                }
            ).encode(),
            "validation_error",
        ),
        (
            json.dumps(
                {"model": "pryv-echo", "messages": [{"role": "user", "content": "x" * 80_000}]}
            ).encode(),
            "context_length_exceeded",
        ),
    ]
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for raw, code in cases:
            response = await http.post("/v1/chat/completions", headers=auth, content=raw)
            assert response.status_code == 400, (raw[:60], response.text)
            assert response.json()["error"]["code"] == code
        bad_id = await http.post(
            "/v1/chat/completions",
            headers={**auth, "X-Request-Id": "no spaces"},
            json={"model": "pryv-echo", "messages": HELLO},
        )
        assert bad_id.status_code == 400
    assert (await account_balance(gateway, key)).debited_micros == 0


async def test_upstream_error_is_502_and_settles_at_zero(gateway: Gateway) -> None:
    key = await gateway.funded_key()
    with pytest.raises(openai.InternalServerError) as failed:
        await sdk(gateway, key).chat.completions.create(
            model="fake-error",
            messages=HELLO,  # type: ignore[arg-type]
        )
    assert failed.value.status_code == 502 and failed.value.code == "upstream_error"
    settled = await gateway.settlements(1)
    got = await account_balance(gateway, key)
    assert (got.debited_micros, got.held_micros) == (0, 0)
    assert [(e.data["outcome"], e.data["actual_micros"]) for e in settled] == [
        ("upstream_error", 0)
    ]


async def test_a_prompt_denser_than_english_is_charged_in_full(gateway: Gateway) -> None:
    """Code and numbers tokenize denser than the ~4 bytes/token estimate; the hold's ~2 bytes
    per token ceiling still covers them, so the settlement charges the reported usage in full
    instead of being capped at a too-small hold (free service)."""
    key = await gateway.funded_key()
    numbers = ",".join(str(n * 7919 % 10007) for n in range(600))  # ~3.5 KB of digits
    answer = await sdk(gateway, key).chat.completions.create(
        model="fake-dense",
        messages=[{"role": "user", "content": numbers}],
        max_tokens=4,
    )
    assert answer.usage is not None
    [settled] = await gateway.settlements(1)
    model = gateway.platform.catalog.get("fake-dense")
    assert model is not None
    reported = Usage(answer.usage.prompt_tokens, answer.usage.completion_tokens)
    central = estimate_prompt_tokens([{"role": "user", "content": numbers}])
    assert reported.prompt_tokens > central  # denser than the central estimate...
    assert settled.data["actual_micros"] == cost_micros(model, reported)  # ...charged in full
    assert settled.data["actual_micros"] < settled.data["held_micros"]
    assert (await account_balance(gateway, key)).held_micros == 0


async def test_usage_less_stream_is_estimated_and_flagged(gateway: Gateway) -> None:
    key = await gateway.funded_key()
    stream = await sdk(gateway, key).chat.completions.create(
        model="fake-nousage",
        messages=HELLO,
        stream=True,
        max_tokens=5,  # type: ignore[arg-type]
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text.split() == ["ok1", "ok2", "ok3", "ok4", "ok5"]
    [settled] = await gateway.settlements(1)
    assert settled.data["outcome"] == "ok" and settled.data["estimated"] is True
    assert settled.data["tokens_out"] > 0 and settled.data["actual_micros"] > 0


async def test_streaming_abort_bills_the_tokens_streamed(gateway: Gateway) -> None:
    key = await gateway.funded_key()
    words = " ".join(f"w{i}" for i in range(200))
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=10) as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={
                "model": "echo-slow",
                "stream": True,
                "messages": [{"role": "user", "content": words}],
            },
        ) as response,
    ):
        assert response.status_code == 200
        received: list[str] = []
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                received += [c["delta"].get("content", "") for c in chunk["choices"]]
            if len([r for r in received if r.strip()]) >= 10:
                break  # hang up mid-answer
    [event] = await gateway.settlements(1)
    assert event.data["outcome"] == "client_abort" and event.data["estimated"] is True
    # Billed: what was streamed (at least what we read), never the whole answer.
    streamed = estimate_text_tokens("".join(received))
    assert streamed <= event.data["tokens_out"] < estimate_text_tokens(words)
    assert 0 < event.data["actual_micros"] < event.data["held_micros"]
    await gateway.settled()
    assert (await account_balance(gateway, key)).held_micros == 0


async def test_mid_stream_upstream_failure_bills_what_was_delivered(gateway: Gateway) -> None:
    key = await gateway.funded_key()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        response = await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "fake-midfail", "stream": True, "messages": HELLO},
        )
    lines = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert json.loads(lines[-1][6:])["error"]["code"] == "upstream_error"
    [settled] = await gateway.settlements(1)
    assert settled.data["outcome"] == "upstream_error" and settled.data["tokens_out"] > 0


async def test_usage_chunk_is_stripped_unless_asked_for(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    key = await gateway.funded_key(env="live", usd="5")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        response = await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "fake-live", "stream": True, "messages": HELLO, "max_tokens": 3},
        )
    chunks = [
        json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")
    ]
    assert response.text.rstrip().endswith("data: [DONE]")
    assert all("usage" not in c for c in chunks)
    assert all(c["model"] == "fake-live" for c in chunks)
    sent = upstream.received[-1]
    assert sent["model"] == "normal" and sent["stream_options"] == {"include_usage": True}
    assert sent["max_tokens"] == 3
    [settled] = await gateway.settlements(1)
    assert settled.data["estimated"] is False  # the upstream's own usage was used
    assert settled.data["actual_micros"] == 3 * 15 + settled.data["tokens_in"] * 3
