"""Signed Merkle checkpoints of the event log: signing, durable storage, and publication.

- Signing: EIP-191 personal_sign with an Ethereum key (eth-account, as wallet auth uses), so any
  auditor verifies a checkpoint with nothing but the sealer's public address. The key comes from
  `PRYV_SEALER_KEY` (hex); without it, one is generated once into `<data_dir>/sealer_key` (0600).
- Storage: one append-only table, primary key `tree_size` — a SQLite file next to the events
  (embedded) or `pryv_checkpoints` in the configured PostgreSQL schema. Triggers refuse UPDATE,
  DELETE (and TRUNCATE): removing a checkpoint takes deliberate DDL, not a stray statement.
  Each row also keeps what the sealer and the verifier need beyond the signed fields: the
  accumulator's compact state at `tree_size` (the resume point) and a leaf record —
  (notification id, leaf hash) for every event since the previous checkpoint — that lets
  `pryv audit verify` name the exact event that changed, not just the range.
- Publication: each checkpoint also goes to JetStream stream `<events stream>_CHECKPOINTS`,
  created with deny_delete and deny_purge and no age/size limits, so a copy of every root lives
  outside the database where whoever can rewrite the database cannot quietly take it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import nats.errors
import nats.js.errors
from eth_utils.address import is_hex_address
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, Header, RetentionPolicy, StorageType, StreamConfig
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from domain.errors import ErrorKind, PryvError
from domain.merkle import Checkpoint, checkpoint_payload
from domain.wallet_messages import WalletAuthError
from infra.bus import BusUnavailable
from infra.bus_nats import default_subject_prefix
from infra.ethereum import Account, encode_defunct
from infra.key_files import load_or_create_key_file, read_key_file
from infra.postgres_ddl import take_ddl_lock
from infra.settings import Settings
from infra.wallet_signatures import recover_signer

log = logging.getLogger("pryv.checkpoints")

SEALER_ADDRESS_ENV = "PRYV_SEALER_ADDRESS"
SEALER_KEY_FILE = "sealer_key"
SQLITE_FILE = "checkpoints.sqlite"
POSTGRES_TABLE = "pryv_checkpoints"
CHECKPOINT_STREAM_SUFFIX = "_CHECKPOINTS"


class CheckpointConflict(PryvError):
    """A checkpoint at or beyond this tree size already exists (a second sealer is running)."""

    kind, code = ErrorKind.CONFLICT, "checkpoint_conflict"


@dataclass(frozen=True)
class StoredCheckpoint:
    checkpoint: Checkpoint
    compact: bytes  # the accumulator's subtree roots at tree_size, 32 bytes each
    leaves: bytes  # (notification id, leaf hash) of each leaf since the previous checkpoint

    @property
    def tree_size(self) -> int:
        return self.checkpoint.tree_size


# --- signing ---------------------------------------------------------------------------------


class CheckpointSigner:
    """Signs checkpoint payloads with one Ethereum key (EIP-191 personal_sign)."""

    def __init__(self, private_key_hex: str) -> None:
        self._account = Account.from_key(private_key_hex)
        self.address: str = str(self._account.address).lower()

    def sign(self, payload: str) -> str:
        signed = self._account.sign_message(encode_defunct(text=payload))
        return "0x" + bytes(signed.signature).hex()

    def checkpoint(
        self, tree_size: int, root_hex: str, last_notification_id: int, created_at: str
    ) -> Checkpoint:
        payload = checkpoint_payload(tree_size, root_hex, last_notification_id, created_at)
        return Checkpoint(
            tree_size=tree_size,
            root_hex=root_hex,
            last_notification_id=last_notification_id,
            created_at=created_at,
            signer=self.address,
            signature=self.sign(payload),
        )


def signature_problem(checkpoint: Checkpoint, trusted_signers: tuple[str, ...]) -> str | None:
    """Why this checkpoint's signature is not acceptable, or None when it is.

    The signature must recover the recorded signer, and the recorded signer must be one of the
    trusted sealer addresses when any are given (a re-signed forgery records the forger's).
    """
    try:
        recovered = recover_signer(checkpoint.payload, checkpoint.signature)
    except WalletAuthError:
        return "signature is unreadable"
    if recovered != checkpoint.signer.lower():
        return f"signature recovers {recovered}, not the recorded signer {checkpoint.signer}"
    trusted = [address.lower() for address in trusted_signers]
    if trusted and recovered not in trusted:
        return f"signed by {recovered}, not by the sealer {', '.join(trusted)}"
    return None


def signer_rank(signer: str, trusted_signers: tuple[str, ...]) -> int:
    """A signer's place in the rotation history (oldest key first); -1 when not listed."""
    trusted = [address.lower() for address in trusted_signers]
    return trusted.index(signer.lower()) if signer.lower() in trusted else -1


def load_or_create_sealer_key(data_dir: Path) -> str:
    """The embedded sealer key, written once beside the SQLite file with owner-only permissions.

    Like the key pepper: production passes PRYV_SEALER_KEY instead. Publish the address
    (`pryv audit checkpoints` prints it) so auditors can pin it with `--signer`.
    """
    return load_or_create_key_file(data_dir / SEALER_KEY_FILE)


def sealer_signer(settings: Settings) -> CheckpointSigner:
    """The signer a sealer uses: PRYV_SEALER_KEY, else the key file in the data dir."""
    key = settings.sealer_key or load_or_create_sealer_key(settings.data_dir)
    return CheckpointSigner(key)


def trusted_sealer_addresses(settings: Settings) -> tuple[str, ...]:
    """The addresses checkpoints may be signed by, oldest key first (never creates keys).

    PRYV_SEALER_ADDRESS — one address, or after key rotations the comma-separated history
    `0xOLD,0xNEW` — else the address of PRYV_SEALER_KEY, else of `<data_dir>/sealer_key`;
    empty when this process knows none.
    """
    if settings.sealer_address:
        return parse_sealer_addresses(settings.sealer_address)
    key = settings.sealer_key or read_key_file(settings.data_dir / SEALER_KEY_FILE)
    return (CheckpointSigner(key).address,) if key else ()


def parse_sealer_addresses(text: str) -> tuple[str, ...]:
    """`0xA, 0xB` -> ("0xa", "0xb"); a malformed or repeated address is a configuration error."""
    addresses = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    for address in addresses:
        if not is_hex_address(address):
            raise ValueError(f"{SEALER_ADDRESS_ENV}: {address!r} is not a 0x address")
    if len(set(addresses)) != len(addresses):
        raise ValueError(f"a sealer address is listed twice in {SEALER_ADDRESS_ENV}: {text}")
    return addresses


# --- stores ----------------------------------------------------------------------------------


class CheckpointStore(Protocol):
    async def append(self, record: StoredCheckpoint) -> None:
        """Store a checkpoint beyond every stored one; CheckpointConflict otherwise."""
        ...

    async def latest(self) -> StoredCheckpoint | None: ...

    async def page(
        self, after_size: int = 0, limit: int = 100, *, with_leaves: bool = True
    ) -> list[StoredCheckpoint]:
        """Checkpoints with tree_size > after_size, smallest first (leaves b"" if not asked)."""
        ...

    async def close(self) -> None: ...


_COLUMNS = (
    "tree_size, root_hex, last_notification_id, created_at, signer, signature, compact, leaves"
)


def _from_row(row: tuple[Any, ...]) -> StoredCheckpoint:
    return StoredCheckpoint(
        Checkpoint(
            tree_size=int(row[0]),
            root_hex=str(row[1]),
            last_notification_id=int(row[2]),
            created_at=str(row[3]),
            signer=str(row[4]),
            signature=str(row[5]),
        ),
        compact=bytes(row[6]),
        leaves=bytes(row[7]) if row[7] is not None else b"",
    )


def _to_row(record: StoredCheckpoint) -> tuple[Any, ...]:
    c = record.checkpoint
    return (
        c.tree_size,
        c.root_hex,
        c.last_notification_id,
        c.created_at,
        c.signer,
        c.signature,
        record.compact,
        record.leaves,
    )


class SqliteCheckpointStore:
    """`audit_checkpoints` in `<data_dir>/checkpoints.sqlite`."""

    TABLE = "audit_checkpoints"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=10000")
        t = self.TABLE
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {t} (tree_size INTEGER PRIMARY KEY,"
            " root_hex TEXT NOT NULL, last_notification_id INTEGER NOT NULL,"
            " created_at TEXT NOT NULL, signer TEXT NOT NULL, signature TEXT NOT NULL,"
            " compact BLOB NOT NULL, leaves BLOB NOT NULL)"
        )
        for action in ("UPDATE", "DELETE"):
            self._conn.execute(
                f"CREATE TRIGGER IF NOT EXISTS {t}_no_{action.lower()} BEFORE {action} ON {t}"
                " BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END"
            )
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings) -> SqliteCheckpointStore:
        return cls(settings.data_dir / SQLITE_FILE)

    def _append(self, record: StoredCheckpoint) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                (top,) = self._conn.execute(
                    f"SELECT COALESCE(MAX(tree_size), 0) FROM {self.TABLE}"
                ).fetchone()
                if top >= record.tree_size:
                    raise CheckpointConflict(
                        f"checkpoint at {top} already stored; refusing {record.tree_size}"
                    )
                self._conn.execute(
                    f"INSERT INTO {self.TABLE} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    _to_row(record),
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _select(self, where: str, params: tuple[Any, ...], with_leaves: bool) -> list[Any]:
        leaves = "leaves" if with_leaves else "NULL"
        columns = _COLUMNS.replace("leaves", leaves)
        with self._lock:
            return self._conn.execute(
                f"SELECT {columns} FROM {self.TABLE} {where}", params
            ).fetchall()

    async def append(self, record: StoredCheckpoint) -> None:
        await asyncio.to_thread(self._append, record)

    async def latest(self) -> StoredCheckpoint | None:
        rows = await asyncio.to_thread(self._select, "ORDER BY tree_size DESC LIMIT 1", (), True)
        return _from_row(rows[0]) if rows else None

    async def page(
        self, after_size: int = 0, limit: int = 100, *, with_leaves: bool = True
    ) -> list[StoredCheckpoint]:
        rows = await asyncio.to_thread(
            self._select,
            "WHERE tree_size > ? ORDER BY tree_size LIMIT ?",
            (after_size, limit),
            with_leaves,
        )
        return [_from_row(r) for r in rows]

    async def close(self) -> None:
        self._conn.close()


class PostgresCheckpointStore:
    """`pryv_checkpoints` in the event store's schema."""

    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self._pool = pool
        self._schema = schema
        self._table = sql.Identifier(schema, POSTGRES_TABLE)

    @classmethod
    async def open(cls, url: str, schema: str | None = None) -> PostgresCheckpointStore:
        pool = AsyncConnectionPool(url, min_size=1, max_size=3, open=False, timeout=5)
        await pool.open(wait=True, timeout=5)
        store = cls(pool, schema or "public")
        try:
            await store._create()
        except BaseException:
            await pool.close()
            raise
        return store

    async def _create(self) -> None:
        function = sql.Identifier(self._schema, f"{POSTGRES_TABLE}_append_only")
        async with self._pool.connection() as conn:
            await take_ddl_lock(conn)
            await conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (tree_size BIGINT PRIMARY KEY,"
                    " root_hex TEXT NOT NULL, last_notification_id BIGINT NOT NULL,"
                    " created_at TEXT NOT NULL, signer TEXT NOT NULL, signature TEXT NOT NULL,"
                    " compact BYTEA NOT NULL, leaves BYTEA NOT NULL)"
                ).format(self._table)
            )
            exists = await conn.execute(
                "SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relname = %s AND t.tgname = %s",
                (self._schema, POSTGRES_TABLE, f"{POSTGRES_TABLE}_append_only"),
            )
            if await exists.fetchone():
                return
            with contextlib.suppress(pg_errors.DuplicateObject, pg_errors.UniqueViolation):
                async with conn.transaction():
                    await conn.execute(
                        sql.SQL(
                            "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql"
                            " AS $$ BEGIN RAISE EXCEPTION 'checkpoints are append-only'; END $$"
                        ).format(function)
                    )
                    await conn.execute(
                        sql.SQL(
                            "CREATE TRIGGER {} BEFORE UPDATE OR DELETE ON {}"
                            " FOR EACH ROW EXECUTE FUNCTION {}()"
                        ).format(
                            sql.Identifier(f"{POSTGRES_TABLE}_append_only"),
                            self._table,
                            function,
                        )
                    )
                    await conn.execute(
                        sql.SQL(
                            "CREATE TRIGGER {} BEFORE TRUNCATE ON {}"
                            " FOR EACH STATEMENT EXECUTE FUNCTION {}()"
                        ).format(
                            sql.Identifier(f"{POSTGRES_TABLE}_no_truncate"),
                            self._table,
                            function,
                        )
                    )

    @property
    def table(self) -> sql.Identifier:
        return self._table

    async def append(self, record: StoredCheckpoint) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(self._table)
            )
            cursor = await conn.execute(
                sql.SQL("SELECT COALESCE(MAX(tree_size), 0) FROM {}").format(self._table)
            )
            row = await cursor.fetchone()
            top = int(row[0]) if row else 0
            if top >= record.tree_size:
                raise CheckpointConflict(
                    f"checkpoint at {top} already stored; refusing {record.tree_size}"
                )
            await conn.execute(
                sql.SQL(
                    "INSERT INTO {} (" + _COLUMNS + ") VALUES (%s,%s,%s,%s,%s,%s,%s,%s)"
                ).format(self._table),
                _to_row(record),
            )

    async def _select(self, tail: str, params: tuple[Any, ...], with_leaves: bool) -> list[Any]:
        columns = _COLUMNS if with_leaves else _COLUMNS.replace("leaves", "NULL")
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                sql.SQL("SELECT " + columns + " FROM {} " + tail).format(self._table), params
            )
            return await cursor.fetchall()

    async def latest(self) -> StoredCheckpoint | None:
        rows = await self._select("ORDER BY tree_size DESC LIMIT 1", (), True)
        return _from_row(rows[0]) if rows else None

    async def page(
        self, after_size: int = 0, limit: int = 100, *, with_leaves: bool = True
    ) -> list[StoredCheckpoint]:
        rows = await self._select(
            "WHERE tree_size > %s ORDER BY tree_size LIMIT %s", (after_size, limit), with_leaves
        )
        return [_from_row(r) for r in rows]

    async def close(self) -> None:
        await self._pool.close()


async def open_checkpoint_store(settings: Settings) -> CheckpointStore:
    """PostgreSQL when the event store is PostgreSQL, else the SQLite file in the data dir."""
    if settings.database_url:
        return await PostgresCheckpointStore.open(settings.database_url, settings.database_schema)
    return SqliteCheckpointStore.for_settings(settings)


# --- JetStream -------------------------------------------------------------------------------


def checkpoint_stream_name(events_stream: str) -> str:
    return f"{events_stream}{CHECKPOINT_STREAM_SUFFIX}"


def checkpoint_subject(events_stream: str) -> str:
    """Outside the events stream's `<prefix>.>` subjects (streams may not overlap)."""
    return f"{default_subject_prefix(events_stream)}_checkpoints.v1"


def checkpoint_stream_config(events_stream: str) -> StreamConfig:
    return StreamConfig(
        name=checkpoint_stream_name(events_stream),
        description="Pryv signed Merkle checkpoints of the event log (append-only)",
        subjects=[checkpoint_subject(events_stream)],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,  # never drop old checkpoints to make room
        max_msgs=-1,
        max_bytes=-1,
        max_age=0,  # keep forever
        max_msgs_per_subject=-1,
        deny_delete=True,  # no message can be deleted through the API
        deny_purge=True,  # and the stream cannot be purged
        allow_rollup_hdrs=False,  # a rollup would replace history
        duplicate_window=120.0,
    )


async def ensure_checkpoint_stream(js: JetStreamContext, events_stream: str) -> str:
    """Create the undeletable checkpoint stream, or check that the existing one is."""
    name = checkpoint_stream_name(events_stream)
    try:
        info = await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        await js.add_stream(checkpoint_stream_config(events_stream))
        return name
    config = info.config
    if not (config.deny_delete and config.deny_purge) or (config.max_age or 0) > 0:
        raise BusUnavailable(
            f"stream {name} exists but is not append-only "
            f"(deny_delete={config.deny_delete}, deny_purge={config.deny_purge}, "
            f"max_age={config.max_age})"
        )
    return name


async def publish_checkpoint(
    js: JetStreamContext, events_stream: str, checkpoint: Checkpoint
) -> int:
    """Publish one signed checkpoint; returns its stream sequence. Idempotent per tree size
    within the duplicate window (Nats-Msg-Id)."""
    ack = await js.publish(
        checkpoint_subject(events_stream),
        json.dumps(checkpoint.to_dict(), separators=(",", ":"), sort_keys=True).encode(),
        stream=checkpoint_stream_name(events_stream),
        headers={Header.MSG_ID.value: f"checkpoint-{checkpoint.tree_size}"},
    )
    return int(ack.seq)


async def last_published_checkpoint(js: JetStreamContext, events_stream: str) -> Checkpoint | None:
    try:
        raw = await js.get_last_msg(
            checkpoint_stream_name(events_stream), checkpoint_subject(events_stream)
        )
    except nats.js.errors.NotFoundError:
        return None
    return Checkpoint.from_dict(json.loads(raw.data or b"{}"))


async def read_published_checkpoints(js: JetStreamContext, events_stream: str) -> list[Checkpoint]:
    """Every checkpoint on the stream, in publication order."""
    name = checkpoint_stream_name(events_stream)
    try:
        info = await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        return []
    out: list[Checkpoint] = []
    for seq in range(info.state.first_seq or 1, info.state.last_seq + 1):
        try:
            raw = await js.get_msg(name, seq=seq)
        except nats.js.errors.NotFoundError:
            continue
        out.append(Checkpoint.from_dict(json.loads(raw.data or b"{}")))
    return out


class NatsCheckpointPublisher:
    """The sealer's sink: publishes to `<stream>_CHECKPOINTS` on its own connection."""

    def __init__(self, nc: NATS, events_stream: str) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self.events_stream = events_stream

    @property
    def js(self) -> JetStreamContext:
        return self._js

    @classmethod
    async def connect(
        cls, url: str, events_stream: str, *, timeout: float = 5.0
    ) -> NatsCheckpointPublisher:
        nc = NATS()
        try:
            await asyncio.wait_for(
                nc.connect(
                    url,
                    name=f"pryv-sealer-{events_stream}",
                    max_reconnect_attempts=-1,
                    connect_timeout=max(1, int(timeout)),
                ),
                timeout,
            )
            publisher = cls(nc, events_stream)
            await ensure_checkpoint_stream(publisher._js, events_stream)
        except (OSError, TimeoutError, nats.errors.Error, BusUnavailable) as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            if isinstance(exc, BusUnavailable):
                raise
            raise BusUnavailable(f"NATS JetStream at {url} is unavailable: {exc!r}") from exc
        return publisher

    async def publish(self, checkpoint: Checkpoint) -> None:
        await publish_checkpoint(self._js, self.events_stream, checkpoint)

    async def last_published_size(self) -> int:
        last = await last_published_checkpoint(self._js, self.events_stream)
        return last.tree_size if last else 0

    async def close(self) -> None:
        if not self._nc.is_closed:
            try:
                await self._nc.drain()
            except (nats.errors.Error, TimeoutError, OSError):
                with contextlib.suppress(Exception):
                    await self._nc.close()
