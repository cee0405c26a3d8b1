"""Call limits in Redis, shared by every API instance: one counter per subject and window
(`{prefix}:calls:{subject}:{window}`), INCR and EXPIRE in one transaction."""

from __future__ import annotations

from redis.asyncio import Redis

from commands.call_limits import window_of


class RedisCallLimiter:
    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    async def hit(self, subject: str, *, limit: int, window_seconds: int, now_s: int) -> int | None:
        window, remaining = window_of(now_s, window_seconds)
        key = f"{self._prefix}:calls:{subject}:{window}"
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window_seconds * 2)
            count, _ = await pipe.execute()
        return None if int(count) <= limit else remaining

    async def close(self) -> None:
        """The client belongs to the read store, which closes it."""
