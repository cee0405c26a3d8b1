"""Nonce stores (SQLite, PostgreSQL): single use, per wallet, durable across reopen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra.nonces import NONCE_TTL, NonceStore, PostgresNonceStore, SqliteNonceStore
from tests.conftest import POSTGRES_URL

Opener = Callable[[], Awaitable[NonceStore]]


@pytest.fixture(params=["sqlite", "postgres"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    opened: list[NonceStore] = []

    async def opener() -> NonceStore:
        store: NonceStore
        if request.param == "sqlite":
            store = SqliteNonceStore(tmp_path / "nonces.sqlite")
        else:
            schema = request.getfixturevalue("postgres_schema")
            store = await PostgresNonceStore.open(POSTGRES_URL, schema)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        await store.close()


NOW = datetime(2026, 11, 23, tzinfo=UTC)


async def test_nonce_is_single_use_per_wallet(open_store: Opener) -> None:
    store = await open_store()
    assert await store.claim("0xa", "nonce-1", NOW)
    assert not await store.claim("0xa", "nonce-1", NOW)
    assert await store.claim("0xb", "nonce-1", NOW)  # another wallet's nonce space


async def test_claims_survive_reopen(open_store: Opener) -> None:
    first = await open_store()
    assert await first.claim("0xa", "nonce-2", NOW)
    await first.close()
    reopened = await open_store()
    assert not await reopened.claim("0xa", "nonce-2", NOW + NONCE_TTL / 2)


async def test_concurrent_claims_of_one_nonce_have_one_winner(open_store: Opener) -> None:
    store = await open_store()
    results = await asyncio.gather(*(store.claim("0xa", "raced", NOW) for _ in range(20)))
    assert results.count(True) == 1
