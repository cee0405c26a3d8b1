"""Bearer API-key authentication for /v1: `Authorization: Bearer pryv_live_…`.

Only a key's immutable identity (id, account, env) is cached in-process, keyed by the key's
HMAC: it can never go stale, so no invalidation is needed. Everything that can change —
revocation, expiry, entitled models, limits — is checked inside the atomic admission step on
every request, which is what makes a revocation effective on every instance the moment its
DELETE returns.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from fastapi import Request

from api.errors import ApiError
from bootstrap.platform import Platform
from commands.metering import KeyIdentity
from domain import ids
from domain.api_keys import MalformedApiKey, hash_api_key, parse_api_key
from projections import keys

CACHE_SIZE = 10_000


class KeyIdentityCache:
    """A small LRU: hash -> identity. Misses are not cached (the key may be created later)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[str, KeyIdentity] = OrderedDict()

    def get(self, secret_hash: str) -> KeyIdentity | None:
        identity = self._entries.get(secret_hash)
        if identity is not None:
            self._entries.move_to_end(secret_hash)
        return identity

    def put(self, secret_hash: str, identity: KeyIdentity) -> None:
        self._entries[secret_hash] = identity
        self._entries.move_to_end(secret_hash)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


async def _key_index_rebuilding(platform: Platform) -> bool:
    """The key index is a replay in progress (the read store lost its data): fenced and not yet
    past the fence, or empty over a log that is not."""
    store = platform.read_store
    applied = (await store.position(keys.NAME)).position
    fence = await store.fence_position()
    if fence:
        return applied < fence
    return applied == 0 and await asyncio.to_thread(platform.app.max_position) > 0


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401, "missing_api_key", "missing API key: send 'Authorization: Bearer pryv_…'"
        )
    return token.strip()


async def authenticate_key(request: Request, platform: Platform) -> KeyIdentity:
    token = bearer_token(request)
    try:
        parsed = parse_api_key(token)
    except MalformedApiKey as exc:
        raise ApiError(401, "invalid_api_key", "invalid API key") from exc
    secret_hash = hash_api_key(platform.settings.key_pepper, token)
    cache: KeyIdentityCache = request.app.state.key_cache
    identity = cache.get(secret_hash)
    if identity is not None:
        return identity
    record = await keys.read_key_by_hash(platform.read_store, secret_hash)
    if record is None and await _key_index_rebuilding(platform):
        # Not "invalid": SDKs treat 401 as final, and the key may well exist.
        raise ApiError(
            503,
            "read_models_rebuilding",
            "the key index is being rebuilt after a storage failure; retry shortly",
            headers={"Retry-After": "1"},
        )
    if record is None or record.key_id != parsed.key_id:
        raise ApiError(401, "invalid_api_key", "invalid API key")
    identity = KeyIdentity(
        key_id=record.key_id,
        aggregate_id=str(ids.api_key_id(record.key_id)),
        account_id=record.account_id,
        env=record.env,
    )
    cache.put(secret_hash, identity)
    return identity
