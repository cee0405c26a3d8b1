"""One contract for the OAuth state stores (memory and Redis): documents by kind and id, a
lifetime, and `take` that redeems at most once even when callers race."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from infra.oauth_state import MemoryOAuthState, OAuthState, RedisOAuthState, digest


@pytest.fixture
async def state(redis_prefix_or_none: str | None) -> AsyncIterator[OAuthState]:
    if redis_prefix_or_none is None:
        yield MemoryOAuthState()
        return
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    yield RedisOAuthState(client, redis_prefix_or_none)
    await client.aclose()  # the redis_prefix fixture deletes {prefix}:*


async def test_documents_by_kind_and_id(state: OAuthState) -> None:
    await state.put("client", "c1", {"name": "Codex"}, 60)
    assert await state.get("client", "c1") == {"name": "Codex"}
    assert await state.get("code", "c1") is None  # kinds are separate
    await state.delete("client", "c1")
    assert await state.get("client", "c1") is None


async def test_take_redeems_once_even_when_racing(state: OAuthState) -> None:
    await state.put("code", digest("the-code"), {"subject": "k1"}, 60)
    results = await asyncio.gather(*(state.take("code", digest("the-code")) for _ in range(8)))
    assert [r for r in results if r is not None] == [{"subject": "k1"}]
    assert await state.take("code", digest("the-code")) is None


async def test_entries_expire(state: OAuthState) -> None:
    await state.put("access", "t", {"x": 1}, 1)
    assert await state.get("access", "t") == {"x": 1}
    deadline = asyncio.get_running_loop().time() + 30
    while await state.get("access", "t") is not None:
        assert asyncio.get_running_loop().time() < deadline, "never expired"
        await asyncio.sleep(0.2)


def test_digest_hides_the_secret() -> None:
    assert digest("pryv_mcp_secret") != "pryv_mcp_secret" and len(digest("x")) == 64
