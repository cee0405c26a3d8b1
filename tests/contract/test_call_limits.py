"""Call limits over both backends (memory, Redis): N calls a window per subject, then the
seconds to the next window; subjects and windows do not share counts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from commands.call_limits import CallLimiter
from infra.call_limits_memory import MemoryCallLimiter
from tests.conftest import REDIS_URL

NOW = 1_800_000_010  # 10 s into a minute


@pytest.fixture
async def limiter(redis_prefix_or_none: str | None) -> AsyncIterator[CallLimiter]:
    if redis_prefix_or_none is None:
        yield MemoryCallLimiter()
        return
    from infra.call_limits_redis import RedisCallLimiter
    from infra.read_store_redis import RedisReadStore

    store = RedisReadStore.from_url(REDIS_URL, redis_prefix_or_none)
    yield RedisCallLimiter(store.client, store.prefix)
    await store.close()  # the redis_prefix fixture deletes {prefix}:*


async def test_n_calls_a_window_then_retry_after(limiter: CallLimiter) -> None:
    hits = [await limiter.hit("wallet:a", limit=3, window_seconds=60, now_s=NOW) for _ in range(4)]
    assert hits == [None, None, None, 50]  # 50 s until the next minute
    assert await limiter.hit("wallet:b", limit=3, window_seconds=60, now_s=NOW) is None
    assert await limiter.hit("wallet:a", limit=3, window_seconds=60, now_s=NOW + 50) is None
