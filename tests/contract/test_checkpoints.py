"""Checkpoint stores (SQLite, PostgreSQL): append-only, ordered, durable across reopen; and the
checkpoint signature checks."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from domain.merkle import MerkleAccumulator, leaf_hash, pack_leaf_records
from infra.checkpoints import (
    POSTGRES_TABLE,
    CheckpointConflict,
    CheckpointSigner,
    CheckpointStore,
    PostgresCheckpointStore,
    SqliteCheckpointStore,
    StoredCheckpoint,
    load_or_create_sealer_key,
    parse_sealer_addresses,
    sealer_signer,
    signature_problem,
    signer_rank,
    trusted_sealer_addresses,
)
from infra.settings import Settings
from tests.conftest import POSTGRES_URL

Opener = Callable[[], Awaitable[CheckpointStore]]
SIGNER = CheckpointSigner("0x" + "11" * 32)
OTHER = CheckpointSigner("0x" + "22" * 32)


@pytest.fixture(params=["sqlite", "postgres"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    opened: list[CheckpointStore] = []

    async def opener() -> CheckpointStore:
        store: CheckpointStore
        if request.param == "sqlite":
            store = SqliteCheckpointStore(tmp_path / "checkpoints.sqlite")
        else:
            schema = request.getfixturevalue("postgres_schema")
            store = await PostgresCheckpointStore.open(POSTGRES_URL, schema)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        await store.close()


def sealed(size: int, previous: int = 0) -> StoredCheckpoint:
    """A genuine checkpoint over synthetic leaves 0..size-1 (notification id = index * 2 + 1)."""
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    acc = MerkleAccumulator()
    acc.extend(leaves)
    checkpoint = SIGNER.checkpoint(size, acc.root().hex(), size * 2 - 1, "2026-11-23T00:00:00Z")
    records = [(i * 2 + 1, leaves[i]) for i in range(previous, size)]
    return StoredCheckpoint(checkpoint, acc.compact_bytes(), pack_leaf_records(records))


async def test_append_then_read_back_in_order(open_store: Opener) -> None:
    store = await open_store()
    assert await store.latest() is None
    assert await store.page() == []
    first, second, third = sealed(3), sealed(8, 3), sealed(13, 8)
    for record in (first, second, third):
        await store.append(record)
    assert await store.latest() == third
    assert await store.page() == [first, second, third]
    assert await store.page(3, 1) == [second]
    bare = await store.page(0, 10, with_leaves=False)
    assert [r.checkpoint for r in bare] == [first.checkpoint, second.checkpoint, third.checkpoint]
    assert all(r.leaves == b"" for r in bare)
    assert [r.compact for r in bare] == [first.compact, second.compact, third.compact]


async def test_a_checkpoint_at_or_below_the_latest_is_refused(open_store: Opener) -> None:
    store = await open_store()
    await store.append(sealed(5))
    with pytest.raises(CheckpointConflict):
        await store.append(sealed(5))
    with pytest.raises(CheckpointConflict):
        await store.append(sealed(4))
    await store.append(sealed(6, 5))
    assert [r.tree_size for r in await store.page()] == [5, 6]


async def test_checkpoints_survive_reopen(open_store: Opener) -> None:
    first = await open_store()
    await first.append(sealed(2))
    await first.close()
    reopened = await open_store()
    assert await reopened.latest() == sealed(2)


def _tamper_sqlite(path: Path, statement: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(statement)


def _tamper_postgres(schema: str, statement: str) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql.SQL(statement).format(table=sql.Identifier(schema, POSTGRES_TABLE)))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {table} SET root_hex = 'ff'",
        "DELETE FROM {table}",
    ],
)
async def test_rows_cannot_be_updated_or_deleted(
    open_store: Opener, request: pytest.FixtureRequest, tmp_path: Path, statement: str
) -> None:
    store = await open_store()
    await store.append(sealed(4))
    if isinstance(store, SqliteCheckpointStore):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            _tamper_sqlite(store.path, statement.format(table=SqliteCheckpointStore.TABLE))
    else:
        schema = request.getfixturevalue("postgres_schema")
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            _tamper_postgres(schema, statement)
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            _tamper_postgres(schema, "TRUNCATE {table}")
    assert await store.latest() == sealed(4)


def test_signature_checks() -> None:
    genuine = sealed(3).checkpoint
    assert signature_problem(genuine, ()) is None
    assert signature_problem(genuine, (SIGNER.address,)) is None
    assert signature_problem(genuine, (SIGNER.address.upper().replace("0X", "0x"),)) is None
    # signed by someone else, who records their own address: only the trusted address catches it
    forged = OTHER.checkpoint(3, genuine.root_hex, 5, genuine.created_at)
    assert signature_problem(forged, ()) is None
    assert "not by the sealer" in (signature_problem(forged, (SIGNER.address,)) or "")
    # a signature over other fields, or a garbled one
    moved = dataclasses.replace(genuine, root_hex="00" * 32)
    assert "not the recorded signer" in (signature_problem(moved, ()) or "")
    garbled = dataclasses.replace(genuine, signature="0x1234")
    assert signature_problem(garbled, ()) == "signature is unreadable"


def test_sealer_key_is_created_once_owner_only(tmp_path: Path) -> None:
    key = load_or_create_sealer_key(tmp_path)
    assert load_or_create_sealer_key(tmp_path) == key
    assert (tmp_path / "sealer_key").stat().st_mode & 0o777 == 0o600
    assert CheckpointSigner(key).address.startswith("0x")
    settings = Settings(data_dir=tmp_path)
    assert trusted_sealer_addresses(settings) == (sealer_signer(settings).address,)
    keyed = dataclasses.replace(settings, sealer_key="0x" + "11" * 32)
    assert sealer_signer(keyed).address == SIGNER.address
    assert trusted_sealer_addresses(keyed) == (SIGNER.address,)
    pinned = dataclasses.replace(
        settings, sealer_address=SIGNER.address.upper().replace("0X", "0x")
    )
    assert trusted_sealer_addresses(pinned) == (SIGNER.address,)
    assert trusted_sealer_addresses(Settings(data_dir=tmp_path / "none")) == ()


def test_sealer_addresses_after_rotations() -> None:
    history = f" {OTHER.address.upper().replace('0X', '0x')} ,{SIGNER.address}"
    assert parse_sealer_addresses(history) == (OTHER.address, SIGNER.address)
    assert [
        signer_rank(a, (OTHER.address, SIGNER.address))
        for a in (OTHER.address, SIGNER.address, "0x" + "0" * 40)
    ] == [0, 1, -1]
    # a checkpoint by either key of the history is acceptable; by anyone else it is not
    old = OTHER.checkpoint(3, "ab" * 32, 5, "2026-11-23T00:00:00+00:00")
    assert signature_problem(old, (OTHER.address, SIGNER.address)) is None
    assert "not by the sealer" in (signature_problem(old, (SIGNER.address,)) or "")
    for bad in ("0xabc", f"{SIGNER.address},{SIGNER.address}"):
        with pytest.raises(ValueError):
            parse_sealer_addresses(bad)
