"""200 concurrent requests against a balance that covers exactly 20: no overspend, ever."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from domain import topics
from domain.api_keys import parse_api_key
from domain.pricing import hold_micros
from domain.tokens import prompt_tokens_ceiling
from infra.settings import Settings
from projections import balance, keys, ledger
from tests.fakes.upstream import FakeUpstream
from tests.gateway_harness import Gateway, running_gateway

MAX_TOKENS = 5
MESSAGES = [{"role": "user", "content": " ".join(f"word{i}" for i in range(40))}]
# Output tokens only are priced: a request then costs exactly its hold (the hold's prompt
# ceiling, ~2 bytes/token, is otherwise above what the echo reports for the prompt).
MODEL = "echo-output-priced"


@pytest.fixture
async def gateway(platform_settings: Settings, upstream: FakeUpstream) -> AsyncIterator[Gateway]:
    async with running_gateway(platform_settings, upstream) as running:
        yield running


async def test_200_concurrent_requests_against_a_balance_for_20(gateway: Gateway) -> None:
    echo = gateway.platform.catalog.get(MODEL)
    assert echo is not None and echo.input_micros_per_million == 0
    # The echo answers exactly MAX_TOKENS words, so each request costs exactly its hold: the
    # balance affords 20 of them, whatever the order.
    cost = hold_micros(echo, prompt_tokens_ceiling(MESSAGES), MAX_TOKENS)
    key = await gateway.funded_key(usd=f"{20 * cost / 1_000_000:.6f}")
    record = await keys.read_key(gateway.platform.read_store, parse_api_key(key).key_id)
    assert record is not None

    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=gateway.url, limits=limits, timeout=60) as http:
        responses = await asyncio.gather(
            *(
                http.post(
                    "/v1/chat/completions",
                    headers={"Authorization": f"Bearer {key}"},
                    json={
                        "model": MODEL,
                        "messages": MESSAGES,
                        "max_tokens": MAX_TOKENS,
                        # money, not privacy, is under test: the prompt reaches the echo as is
                        "skip_pii_redaction": True,
                    },
                )
                for _ in range(200)
            )
        )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 20, 402: 180}, statuses
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 402} == {
        "insufficient_credits"
    }

    settled = await gateway.settlements(20)
    got = await balance.read_balance(gateway.platform.read_store, record.account_id, "test")
    assert got.held_micros == 0
    assert got.balance_micros == 0 and got.available_micros == 0  # spent exactly, never more
    # balance == credits - settlements, from the ledger and from the event log alike
    entries = await ledger.ledger_page(
        gateway.platform.read_store, record.account_id, before=None, limit=1000
    )
    assert sum(e["amount_micros"] for e in entries) == got.balance_micros
    assert sum(e.data["actual_micros"] for e in settled) == 20 * cost
    log = await asyncio.to_thread(gateway.platform.app.read_log, 0, 1_000_000)
    placed = Counter(e.originator_id for e in log if e.topic == topics.HOLD_PLACED)
    settlements = Counter(e.originator_id for e in log if e.topic == topics.HOLD_SETTLED)
    assert len(placed) == 20 and placed == settlements  # every hold settled exactly once
