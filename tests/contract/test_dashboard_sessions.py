"""Dashboard sign-in sessions over both stores (memory, Redis): the same lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as redis

from infra.dashboard_sessions import MemorySessionStore, RedisSessionStore, SessionStore
from tests.conftest import REDIS_URL

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=30)


@pytest.fixture
async def store(redis_prefix_or_none: str | None) -> AsyncIterator[SessionStore]:
    if redis_prefix_or_none is None:
        yield MemorySessionStore(ttl=TTL)
        return
    client = redis.from_url(REDIS_URL)
    yield RedisSessionStore(client, redis_prefix_or_none, ttl=TTL)
    await client.aclose()  # the redis_prefix fixture deletes {prefix}:*


async def test_a_session_lives_until_its_absolute_expiry(store: SessionStore) -> None:
    token, session = await store.create("0xabc", NOW)
    assert session.wallet == "0xabc" and session.expires_at == NOW + TTL
    assert await store.get(token, NOW + timedelta(minutes=29)) == session
    assert await store.get(token, NOW + TTL) is None  # absolute, no sliding
    assert await store.get(token, NOW) is None  # and gone for good


async def test_sign_out_and_foreign_tokens(store: SessionStore) -> None:
    token, _ = await store.create("0xabc", NOW)
    other, _ = await store.create("0xdef", NOW)
    await store.delete(token)
    assert await store.get(token, NOW) is None
    assert (await store.get(other, NOW)) is not None  # only that session ended
    assert await store.get(None, NOW) is None
    assert await store.get("x" * 500, NOW) is None
    assert await store.get(token + "x", NOW) is None
    await store.delete(None)  # signing out without a session is fine


async def test_tokens_are_random_and_stored_only_hashed(
    store: SessionStore, redis_prefix_or_none: str | None
) -> None:
    tokens = {(await store.create("0xabc", NOW))[0] for _ in range(20)}
    assert len(tokens) == 20 and all(len(t) >= 43 for t in tokens)
    if redis_prefix_or_none is not None:
        client = redis.from_url(REDIS_URL, decode_responses=True)
        try:
            keys = [k async for k in client.scan_iter(match=f"{redis_prefix_or_none}:*")]
            ttls = [await client.pttl(k) for k in keys]
        finally:
            await client.aclose()
        assert len(keys) == 20 and not any(t in k for k in keys for t in tokens)
        assert all(0 < ttl <= TTL.total_seconds() * 1000 for ttl in ttls)  # Redis forgets them


async def test_memory_store_is_bounded() -> None:
    store = MemorySessionStore(ttl=TTL, max_sessions=2)
    first, _ = await store.create("0x1", NOW)
    await store.create("0x2", NOW + timedelta(seconds=1))
    await store.create("0x3", NOW + timedelta(seconds=2))  # full: the oldest goes
    assert len(store) == 2 and await store.get(first, NOW) is None
