"""Durable single-use wallet nonces: one table in the same database as the event store.

A nonce is claimed once; its row outlives the signed message's timestamp window (TTL 15 min >
±5 min), so a replay inside the window hits the row and one outside it fails the timestamp check.
Kept in SQL rather than Redis because the embedded default has no Redis and a restart must not
reopen the replay window.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from infra.postgres_ddl import take_ddl_lock

NONCE_TTL = timedelta(minutes=15)
_PURGE_EVERY = 1000  # claims between purges of expired rows


class NonceStore(Protocol):
    async def claim(self, wallet: str, nonce: str, now: datetime) -> bool:
        """True the first time (wallet, nonce) is seen; False for a replay."""
        ...

    async def close(self) -> None: ...


class SqliteNonceStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS wallet_nonces ("
            " wallet TEXT NOT NULL, nonce TEXT NOT NULL, expires_at REAL NOT NULL,"
            " PRIMARY KEY (wallet, nonce))"
        )
        self._lock = threading.Lock()
        self._claims = 0

    def _claim(self, wallet: str, nonce: str, now: datetime) -> bool:
        with self._lock:
            self._claims += 1
            if self._claims % _PURGE_EVERY == 0:
                self._conn.execute(
                    "DELETE FROM wallet_nonces WHERE expires_at < ?", (now.timestamp(),)
                )
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO wallet_nonces (wallet, nonce, expires_at) VALUES (?, ?, ?)",
                (wallet, nonce, (now + NONCE_TTL).timestamp()),
            )
            return cursor.rowcount == 1

    async def claim(self, wallet: str, nonce: str, now: datetime) -> bool:
        return await asyncio.to_thread(self._claim, wallet, nonce, now)

    async def close(self) -> None:
        self._conn.close()


class PostgresNonceStore:
    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self._pool = pool
        self._table = sql.Identifier(schema, "pryv_wallet_nonces")
        self._claims = 0

    @classmethod
    async def open(cls, url: str, schema: str | None = None) -> PostgresNonceStore:
        pool = AsyncConnectionPool(url, min_size=1, max_size=5, open=False, timeout=5)
        await pool.open(wait=True, timeout=5)
        store = cls(pool, schema or "public")
        async with pool.connection() as conn:
            await take_ddl_lock(conn)
            await conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (wallet TEXT NOT NULL, nonce TEXT NOT NULL,"
                    " expires_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (wallet, nonce))"
                ).format(store._table)
            )
        return store

    async def claim(self, wallet: str, nonce: str, now: datetime) -> bool:
        self._claims += 1
        async with self._pool.connection() as conn:
            if self._claims % _PURGE_EVERY == 0:
                await conn.execute(
                    sql.SQL("DELETE FROM {} WHERE expires_at < %s").format(self._table), (now,)
                )
            cursor = await conn.execute(
                sql.SQL(
                    "INSERT INTO {} (wallet, nonce, expires_at) VALUES (%s, %s, %s)"
                    " ON CONFLICT DO NOTHING"
                ).format(self._table),
                (wallet, nonce, now + NONCE_TTL),
            )
            return cursor.rowcount == 1

    async def close(self) -> None:
        await self._pool.close()
