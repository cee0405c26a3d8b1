"""Which key is calling: a bearer API key's immutable identity (id, account, env).

Only that identity is cached in-process, keyed by the key's HMAC: it can never go stale, so
no invalidation is needed. Everything that can change — revocation, expiry, entitled models,
limits, and which secret a rolled key still accepts — is checked inside the atomic admission
step on every request, which is what makes a revocation or a roll's end of grace effective on
every instance at once.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from bootstrap.platform import Platform
from commands.metering import KeyIdentity
from domain import ids
from domain.api_keys import MalformedApiKey, hash_api_key, parse_api_key
from domain.errors import ErrorKind, PryvError
from projections import keys

CACHE_SIZE = 10_000


class InvalidApiKey(PryvError):
    kind, code = ErrorKind.AUTHENTICATION, "invalid_api_key"

    def __init__(self) -> None:
        super().__init__("invalid API key")


class KeyIndexRebuilding(PryvError):
    """The key may well exist: not 401, which SDKs treat as final."""

    kind, code = ErrorKind.UNAVAILABLE, "read_models_rebuilding"

    def __init__(self) -> None:
        super().__init__(
            "the key index is being rebuilt after a storage failure; retry shortly",
            metadata={"Retry-After": "1"},
        )


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


async def authenticate_key(platform: Platform, token: str, cache: KeyIdentityCache) -> KeyIdentity:
    """The identity of the key `token` is, or InvalidApiKey (KeyIndexRebuilding while the
    index cannot tell)."""
    try:
        parsed = parse_api_key(token)
    except MalformedApiKey as exc:
        raise InvalidApiKey() from exc
    secret_hash = hash_api_key(platform.settings.key_pepper, token)
    identity = cache.get(secret_hash)
    if identity is not None:
        return identity
    record = await keys.read_key_by_hash(platform.read_store, secret_hash)
    if record is None and await _key_index_rebuilding(platform):
        raise KeyIndexRebuilding()
    if record is None or record.key_id != parsed.key_id:
        raise InvalidApiKey()
    identity = KeyIdentity(
        key_id=record.key_id,
        aggregate_id=str(ids.api_key_id(record.key_id)),
        account_id=record.account_id,
        env=record.env,
        secret_hash=secret_hash,
    )
    cache.put(secret_hash, identity)
    return identity
