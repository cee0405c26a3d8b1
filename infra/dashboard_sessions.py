"""Dashboard sign-in sessions: opaque random tokens in an httpOnly cookie, state server-side.

Only a SHA-256 of each token is stored, so the store never holds a usable cookie. Sessions
authorize reads; every destructive action still needs a fresh wallet signature
(dashboard.actions). Embedded: in memory (a restart signs people out). With Redis: shared by
every dashboard process and kept across restarts, each entry expiring with its session.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import redis.asyncio as redis

SESSION_TTL = timedelta(minutes=30)
MAX_MEMORY_SESSIONS = 10_000
_MAX_TOKEN = 128  # longer cookies are not ours: refuse before hashing


@dataclass(frozen=True)
class Session:
    wallet: str  # lower-case 0x address
    created_at: datetime
    expires_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> str:
    return secrets.token_urlsafe(32)


class SessionStore(Protocol):
    ttl: timedelta

    async def create(self, wallet: str, now: datetime) -> tuple[str, Session]:
        """A new session and its token (the cookie value); absolute expiry, no sliding."""
        ...

    async def get(self, token: str | None, now: datetime) -> Session | None: ...

    async def delete(self, token: str | None) -> None: ...


class MemorySessionStore:
    def __init__(
        self, ttl: timedelta = SESSION_TTL, max_sessions: int = MAX_MEMORY_SESSIONS
    ) -> None:
        self.ttl = ttl
        self._max = max_sessions
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    async def create(self, wallet: str, now: datetime) -> tuple[str, Session]:
        self._purge(now)
        if len(self._sessions) >= self._max:  # still full of live sessions: drop the oldest
            oldest = min(self._sessions, key=lambda k: self._sessions[k].created_at)
            del self._sessions[oldest]
        token = _new_token()
        session = Session(wallet=wallet, created_at=now, expires_at=now + self.ttl)
        self._sessions[_digest(token)] = session
        return token, session

    async def get(self, token: str | None, now: datetime) -> Session | None:
        if not token or len(token) > _MAX_TOKEN:
            return None
        key = _digest(token)
        session = self._sessions.get(key)
        if session is None:
            return None
        if now >= session.expires_at:
            del self._sessions[key]
            return None
        return session

    async def delete(self, token: str | None) -> None:
        if token:
            self._sessions.pop(_digest(token), None)

    def _purge(self, now: datetime) -> None:
        expired = [k for k, s in self._sessions.items() if now >= s.expires_at]
        for key in expired:
            del self._sessions[key]


class RedisSessionStore:
    """`{prefix}:dsession:<sha256 of token>` -> hash {wallet, created_at}, with a Redis TTL of
    the session's lifetime (so Redis forgets it), and the absolute expiry checked on read."""

    def __init__(self, client: redis.Redis, prefix: str, ttl: timedelta = SESSION_TTL) -> None:
        self.ttl = ttl
        self._client = client
        self._prefix = f"{prefix}:dsession:"

    async def create(self, wallet: str, now: datetime) -> tuple[str, Session]:
        token = _new_token()
        session = Session(wallet=wallet, created_at=now, expires_at=now + self.ttl)
        key = self._prefix + _digest(token)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"wallet": wallet, "created_at": now.isoformat()})
            pipe.pexpire(key, int(self.ttl.total_seconds() * 1000))
            await pipe.execute()
        return token, session

    async def get(self, token: str | None, now: datetime) -> Session | None:
        if not token or len(token) > _MAX_TOKEN:
            return None
        raw = await self._client.hgetall(self._prefix + _digest(token))
        fields = {_text(k): _text(v) for k, v in raw.items()}  # with or without decode_responses
        if not fields:
            return None
        created_at = datetime.fromisoformat(fields["created_at"])
        session = Session(fields["wallet"], created_at, created_at + self.ttl)
        if now >= session.expires_at:
            await self.delete(token)
            return None
        return session

    async def delete(self, token: str | None) -> None:
        if token and len(token) <= _MAX_TOKEN:
            await self._client.delete(self._prefix + _digest(token))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
