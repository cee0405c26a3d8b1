"""Many processes start against one fresh PostgreSQL schema at once (API replicas, relay,
projector, sweeper). Each creates the tables it needs; that DDL must not fail with
PostgreSQL's "tuple concurrently updated" (CI saw it kill a projector at start)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
import pytest

from bootstrap.platform import open_application
from infra.checkpoints import PostgresCheckpointStore
from infra.nonces import PostgresNonceStore
from infra.settings import Settings
from tests.conftest import POSTGRES_URL, require_service, unique_name

STARTERS = 8
ROUNDS = 4


def open_together(settings: Settings) -> list[BaseException]:
    """Open the store from STARTERS threads released at the same instant."""
    barrier = threading.Barrier(STARTERS)
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            open_application(settings).close()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(STARTERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_processes_starting_together_all_open_the_store(tmp_path: Path) -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    schemas = [unique_name("pryv_start") for _ in range(ROUNDS)]
    try:
        for schema in schemas:  # the schema is absent too: its creation races as well
            settings = Settings(
                data_dir=tmp_path, database_url=POSTGRES_URL, database_schema=schema
            )
            assert open_together(settings) == []
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.parametrize("store", ["nonces", "checkpoints"])
async def test_side_tables_created_concurrently(store: str, postgres_schema: str) -> None:
    opener: Callable[[str, str | None], Awaitable[PostgresNonceStore | PostgresCheckpointStore]]
    opener = PostgresNonceStore.open if store == "nonces" else PostgresCheckpointStore.open
    tasks = [asyncio.ensure_future(opener(POSTGRES_URL, postgres_schema)) for _ in range(STARTERS)]
    await asyncio.wait(tasks)
    errors = [task.exception() for task in tasks if task.exception() is not None]
    for task in tasks:
        if task.exception() is None:
            await task.result().close()
    assert errors == []
