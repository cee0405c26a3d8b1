"""Schema creation serialized across processes.

API replicas, the relay, the projector and the sweeper start together and each runs
`CREATE SCHEMA/TABLE IF NOT EXISTS` and `CREATE OR REPLACE FUNCTION`. PostgreSQL's catalog
updates are not safe against themselves ("tuple concurrently updated", or a unique violation
on pg_namespace), so all of Pryv's DDL runs under one advisory lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import AsyncConnection

# Any fixed 64-bit number works; this one is "pryvDDL" in ASCII so it is findable in pg_locks.
DDL_LOCK_KEY = 0x70727976_44444C


@contextmanager
def ddl_lock(url: str) -> Iterator[None]:
    """Hold the DDL lock (on its own session) while the body creates tables elsewhere."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (DDL_LOCK_KEY,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (DDL_LOCK_KEY,))


async def take_ddl_lock(conn: AsyncConnection[object]) -> None:
    """Take the DDL lock for the rest of `conn`'s current transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK_KEY,))
