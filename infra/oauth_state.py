"""The MCP authorization server's short-lived state: registered clients, pending consents,
authorization codes, access and refresh tokens — each a JSON document under a kind and an id,
with a lifetime.

Tokens and codes are stored under their SHA-256 only (`digest`), so the store never holds a
usable credential. `take` reads and deletes in one step: an authorization code or a refresh
token is redeemed at most once, even by two processes racing. Embedded: in memory. With Redis:
shared by every API process (`{prefix}:oauth:<kind>:<id>`), each entry expiring with its TTL.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Protocol

import redis.asyncio as redis

from domain.errors import ServiceUnavailable

MAX_MEMORY_ENTRIES = 100_000


def digest(secret: str) -> str:
    """What a code or token is stored under."""
    return hashlib.sha256(secret.encode()).hexdigest()


class OAuthState(Protocol):
    async def put(self, kind: str, key: str, doc: dict[str, Any], ttl_seconds: int) -> None: ...

    async def get(self, kind: str, key: str) -> dict[str, Any] | None: ...

    async def take(self, kind: str, key: str) -> dict[str, Any] | None:
        """The document, deleted in the same step; None if absent (or already taken)."""
        ...

    async def delete(self, kind: str, key: str) -> None: ...


class MemoryOAuthState:
    def __init__(self, max_entries: int = MAX_MEMORY_ENTRIES) -> None:
        self._entries: dict[tuple[str, str], tuple[float, str]] = {}
        self._max = max_entries

    async def put(self, kind: str, key: str, doc: dict[str, Any], ttl_seconds: int) -> None:
        if len(self._entries) >= self._max:
            now = time.monotonic()
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= self._max:
                raise ServiceUnavailable("too many pending authorizations; retry later")
        self._entries[(kind, key)] = (time.monotonic() + ttl_seconds, json.dumps(doc))

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        entry = self._entries.get((kind, key))
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._entries.pop((kind, key), None)
            return None
        loaded: dict[str, Any] = json.loads(entry[1])
        return loaded

    async def take(self, kind: str, key: str) -> dict[str, Any] | None:
        doc = await self.get(kind, key)
        self._entries.pop((kind, key), None)
        return doc

    async def delete(self, kind: str, key: str) -> None:
        self._entries.pop((kind, key), None)


class RedisOAuthState:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = f"{prefix}:oauth:"

    def _key(self, kind: str, key: str) -> str:
        return f"{self._prefix}{kind}:{key}"

    async def put(self, kind: str, key: str, doc: dict[str, Any], ttl_seconds: int) -> None:
        await self._client.set(self._key(kind, key), json.dumps(doc), ex=ttl_seconds)

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return _loaded(await self._client.get(self._key(kind, key)))

    async def take(self, kind: str, key: str) -> dict[str, Any] | None:
        return _loaded(await self._client.getdel(self._key(kind, key)))

    async def delete(self, kind: str, key: str) -> None:
        await self._client.delete(self._key(kind, key))


def _loaded(raw: bytes | str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    doc: dict[str, Any] = json.loads(raw)
    return doc
