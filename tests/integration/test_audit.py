"""Tamper-evident log, over both deployments: the sealer signs Merkle checkpoints of the raw log,
`pryv audit verify` passes on an untouched log and names the exact event after a byte of its
stored state is changed or it is deleted, catches forged checkpoints, and `pryv audit export`
gives one account's events with leaf hashes and inclusion proofs (and no secret material)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import io
import json
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from audit.export import export_account, write_export
from audit.sealer import Sealer, SealerStateError, raw_reader, running_sealer
from audit.verify import VerifyReport, verify_log
from bootstrap.platform import Platform
from cli.audit import run_verify
from domain import ids, topics
from domain.merkle import (
    Checkpoint,
    event_leaf_hash,
    unpack_leaf_records,
    verify_inclusion,
)
from infra.checkpoints import (
    POSTGRES_TABLE,
    CheckpointSigner,
    CheckpointStore,
    NatsCheckpointPublisher,
    SqliteCheckpointStore,
    checkpoint_stream_name,
    open_checkpoint_store,
    read_published_checkpoints,
    sealer_signer,
    signature_problem,
    trusted_sealer_addresses,
)
from infra.settings import Settings
from tests.evidence import OPERATOR, stripe
from tests.holds import place_hold
from tests.integration.test_relay_crash import relay_env

ROOT = Path(__file__).resolve().parents[2]
WALLETS = [f"0x{i:040x}" for i in range(0xA0, 0xA3)]
EVERY = 7  # events per checkpoint: several checkpoints over a small history


def write_history(platform: Platform, tag: str = "") -> None:
    """Keys (created, limits changed, revoked), purchases, grants, holds and settlements."""
    app = platform.app
    for n, wallet in enumerate(WALLETS):
        key_id = app.create_key(
            authorization=OPERATOR,
            wallet=wallet,
            name=f"key-{n}{tag}",
            env="live",
            models=["m"],
            rpm=60,
            tpm=1000,
            monthly_budget_micros=5_000_000,
            expires_at=None,
            pepper=platform.settings.key_pepper,
        ).issued.key_id
        app.change_key_limits(
            wallet=wallet, key_id=key_id, changes={"rpm": 30}, authorization=OPERATOR
        )
        app.record_purchase(
            source_id=f"cs_{n}{tag}", wallet=wallet, usd_micros=20_000_000, evidence=stripe()
        )
        app.grant_credits(
            authorization=OPERATOR,
            wallet=wallet,
            env="test",
            amount_micros=1_000_000,
            reason="dev",
            granted_by="ops",
            grant_ref=f"g{n}{tag}",
        )
        for r in range(3):
            placed = place_hold(
                app,
                key_id=key_id,
                request_id=f"r{r}{tag}",
                account_id=str(ids.account_id(wallet)),
                env="live",
                amount_micros=100_000,
                model="m",
                expires_at=datetime.now(UTC) + timedelta(minutes=5),
            )
            if r < 2:
                app.settle_hold(
                    placed.aggregate_id,
                    cost_micros=1_000 * (r + 1),
                    tokens_in=10,
                    tokens_out=r,
                    outcome="ok",
                )
        if n == 0:
            app.revoke_key(wallet=wallet, key_id=key_id, reason="rotated", authorization=OPERATOR)


@pytest.fixture
async def store(platform: Platform) -> AsyncIterator[CheckpointStore]:
    opened = await open_checkpoint_store(platform.settings)
    yield opened
    await opened.close()
    await delete_checkpoint_stream(platform.settings)


async def delete_checkpoint_stream(settings: Settings) -> None:
    """Drop a test's checkpoint stream (undeletable message by message, not as a whole)."""
    if not settings.nats_url:
        return
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(settings.nats_url)
    try:
        with contextlib.suppress(NotFoundError):
            await nc.jetstream().delete_stream(checkpoint_stream_name(settings.nats_stream))
    finally:
        await nc.close()


async def seal(platform: Platform, store: CheckpointStore, *, every: int = EVERY) -> Sealer:
    """Seal everything written so far, the way `pryv audit seal --once` does."""
    publisher = (
        await NatsCheckpointPublisher.connect(
            platform.settings.nats_url, platform.settings.nats_stream
        )
        if platform.settings.nats_url
        else None
    )
    try:
        sealer = Sealer(
            raw_reader(platform.app.recorder),
            store,
            sealer_signer(platform.settings),
            publisher,
            every_events=every,
            every_seconds=3600,
            page_size=5,
        )
        await sealer.seal_pending(force=True)
        return sealer
    finally:
        if publisher is not None:
            await publisher.close()


async def verify(platform: Platform, store: CheckpointStore) -> VerifyReport:
    """In-process verify with tiny pages, so checkpoint ranges straddle page boundaries."""
    published = None
    if platform.settings.nats_url:
        publisher = await NatsCheckpointPublisher.connect(
            platform.settings.nats_url, platform.settings.nats_stream
        )
        try:
            published = await read_published_checkpoints(
                publisher.js, platform.settings.nats_stream
            )
        finally:
            await publisher.close()
    return await verify_log(
        raw_reader(platform.app.recorder),
        store,
        trusted_signers=trusted_sealer_addresses(platform.settings),
        decode=platform.app.mapper.to_domain_event,  # type: ignore[arg-type]
        page_size=5,
        published=published,
    )


def cli_env(settings: Settings) -> dict[str, str]:
    env = relay_env(settings)
    for name in ("PRYV_SEALER_KEY", "PRYV_SEALER_ADDRESS"):
        env.pop(name, None)  # the sealer key is the one in the data dir
    return env


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.audit", *args],
        env=cli_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- raw access to the stored events, as someone with database access would have ----------


@contextlib.contextmanager
def raw_db(settings: Settings) -> Any:
    if settings.database_url:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            yield conn
    else:
        lite = sqlite3.connect(settings.data_dir / "events.sqlite", isolation_level=None)
        try:
            yield lite
        finally:
            lite.close()


def _events_table(settings: Settings) -> sql.Composable:
    return sql.Identifier(settings.database_schema or "public", "pryv_events")


def stored_state(settings: Settings, nid: int) -> bytes:
    with raw_db(settings) as conn:
        if settings.database_url:
            row = conn.execute(
                sql.SQL("SELECT state FROM {} WHERE notification_id = %s").format(
                    _events_table(settings)
                ),
                (nid,),
            ).fetchone()
        else:
            row = conn.execute("SELECT state FROM stored_events WHERE rowid = ?", (nid,)).fetchone()
    return bytes(row[0])


def overwrite_state(settings: Settings, nid: int, state: bytes) -> None:
    with raw_db(settings) as conn:
        if settings.database_url:
            conn.execute(
                sql.SQL("UPDATE {} SET state = %s WHERE notification_id = %s").format(
                    _events_table(settings)
                ),
                (state, nid),
            )
        else:
            conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (state, nid))


def delete_event(settings: Settings, nid: int) -> None:
    with raw_db(settings) as conn:
        if settings.database_url:
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE notification_id = %s").format(
                    _events_table(settings)
                ),
                (nid,),
            )
        else:
            conn.execute("DELETE FROM stored_events WHERE rowid = ?", (nid,))


def rewrite_checkpoint(settings: Settings, checkpoint: Checkpoint) -> None:
    """Replace a stored checkpoint's signed fields, disabling the append-only guard first."""
    values = (checkpoint.root_hex, checkpoint.signer, checkpoint.signature, checkpoint.tree_size)
    if settings.database_url:
        table = sql.Identifier(settings.database_schema or "public", POSTGRES_TABLE)
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(table))
            conn.execute(
                sql.SQL(
                    "UPDATE {} SET root_hex = %s, signer = %s, signature = %s WHERE tree_size = %s"
                ).format(table),
                values,
            )
        return
    table_name = SqliteCheckpointStore.TABLE
    with sqlite3.connect(settings.data_dir / "checkpoints.sqlite") as conn:
        conn.execute(f"DROP TRIGGER IF EXISTS {table_name}_no_update")
        conn.execute(
            f"UPDATE {table_name} SET root_hex = ?, signer = ?, signature = ? WHERE tree_size = ?",
            values,
        )


def first_nid(platform: Platform, topic: str, skip: int = 0) -> int:
    matches = [e.position for e in platform.app.read_log(0, 10_000) if e.topic == topic]
    return matches[skip]


# --- tests -----------------------------------------------------------------------------------


async def test_sealed_log_verifies_in_process_and_from_the_cli(
    platform: Platform, store: CheckpointStore
) -> None:
    write_history(platform)
    total = len(platform.app.read_log(0, 10_000))
    sealer = await seal(platform, store)
    assert sealer.tree_size == total
    stored = await store.page(0, 1000)
    sizes = [r.tree_size for r in stored]
    assert sizes == sorted({*range(EVERY, total + 1, EVERY), total})  # every 7, then the rest
    assert len(sizes) >= 5

    report = await verify(platform, store)
    assert report.ok, report.render()
    assert (report.events, report.sealed_events, report.checkpoints) == (total, total, len(sizes))

    # Resume: another sealer process continues from the stored compact state, not from zero.
    write_history(platform, tag="-more")
    sealed = run_cli(platform.settings, "seal", "--once", "--every-events", str(EVERY))
    assert sealed.returncode == 0, sealed.stderr
    resumed = json.loads(sealed.stdout)
    assert resumed["eventsHashed"] == len(platform.app.read_log(0, 10_000)) - total
    assert resumed["treeSize"] == len(platform.app.read_log(0, 10_000))
    assert (await verify(platform, store)).ok

    done = run_cli(platform.settings, "verify", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] and doc["problem"] is None
    assert doc["signer"] == sealer_signer(platform.settings).address
    assert doc["eventsPerSecond"] > 0
    if platform.settings.nats_url:
        assert doc["publishedCheckpointsChecked"] == len(await store.page(0, 1000))


async def test_running_sealer_checkpoints_on_time_and_on_stop(
    platform: Platform, store: CheckpointStore
) -> None:
    app = platform.app
    wallet = WALLETS[1]
    async with running_sealer(app, platform.settings, every_events=1000, every_seconds=0.2):
        app.grant_credits(
            authorization=OPERATOR,
            wallet=wallet,
            env="live",
            amount_micros=1,
            reason="r",
            granted_by="t",
            grant_ref="a",
        )
        size = app.max_position()
        for _ in range(100):  # fewer than every_events: sealed once every_seconds have passed
            latest = await store.latest()
            if latest and latest.tree_size == size:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("no time-based checkpoint")
        app.grant_credits(
            authorization=OPERATOR,
            wallet=wallet,
            env="live",
            amount_micros=1,
            reason="r",
            granted_by="t",
            grant_ref="b",
        )
    latest = await store.latest()  # stopping sealed the pending event
    assert latest is not None and latest.tree_size == len(app.read_log(0, 100))
    assert (await verify(platform, store)).ok


async def test_one_changed_byte_in_one_events_state_is_named_exactly(
    platform: Platform, store: CheckpointStore
) -> None:
    write_history(platform)
    await seal(platform, store)
    target = first_nid(platform, topics.PURCHASE_COMPLETED, skip=1)
    original = stored_state(platform.settings, target)
    digit = original.index(b'"usd_micros":2') + len(b'"usd_micros":')
    tampered = original[:digit] + b"9" + original[digit + 1 :]  # 20 USD -> 90 USD, still JSON
    assert len(tampered) == len(original) and tampered != original
    overwrite_state(platform.settings, target, tampered)
    (decoded,) = platform.app.read_log(target - 1, 1)  # it still decodes: only the tree knows
    assert decoded.position == target and decoded.data["usd_micros"] == 90_000_000

    report = await verify(platform, store)
    assert not report.ok
    assert report.problem is not None
    assert (report.problem.kind, report.problem.notification_id) == ("changed", target)
    assert report.problem.topic == topics.PURCHASE_COMPLETED
    assert report.problem.originator_version == 1
    assert report.problem.checkpoint_size is not None  # the checkpoint that sealed it

    done = run_cli(platform.settings, "verify", "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    problem = json.loads(done.stdout)["problem"]
    assert (problem["kind"], problem["notificationId"]) == ("changed", target)
    text = run_cli(platform.settings, "verify")
    assert text.returncode == 1
    assert f"FAILED: event {target} (originator" in text.stdout

    overwrite_state(platform.settings, target, original)  # put it back: clean again
    assert (await verify(platform, store)).ok


async def test_sqlite_state_retyped_as_text_is_named(
    platform: Platform, store: CheckpointStore
) -> None:
    """SQLite is dynamically typed: `replace()` on the BLOB column stores TEXT."""
    if platform.settings.database_url:
        pytest.skip("PostgreSQL's bytea column has one type")
    write_history(platform)
    await seal(platform, store)
    target = first_nid(platform, topics.GRANT_GRANTED, skip=2)
    with raw_db(platform.settings) as conn:
        conn.execute(
            "UPDATE stored_events SET state = CAST(state AS TEXT) WHERE rowid = ?", (target,)
        )
    report = await verify(platform, store)  # same bytes, other type: still named
    assert report.problem is not None
    assert (report.problem.kind, report.problem.notification_id) == ("changed", target)
    assert "stored as str" in report.problem.message
    with raw_db(platform.settings) as conn:
        conn.execute(
            "UPDATE stored_events SET state = replace(state, '\"dev\"', '\"DEV\"') WHERE rowid = ?",
            (target,),
        )
    report = await verify(platform, store)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.notification_id) == ("changed", target)
    assert "differs from what checkpoint" in report.problem.message


async def test_a_deleted_event_is_named(platform: Platform, store: CheckpointStore) -> None:
    write_history(platform)
    await seal(platform, store)
    target = first_nid(platform, topics.KEY_LIMITS_CHANGED, skip=1)
    delete_event(platform.settings, target)
    report = await verify(platform, store)
    assert report.problem is not None, report.render()
    assert (report.problem.kind, report.problem.notification_id) == ("missing", target)
    done = run_cli(platform.settings, "verify", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["problem"]["notificationId"] == target


async def test_truncating_the_sealed_log_is_detected(
    platform: Platform, store: CheckpointStore
) -> None:
    write_history(platform)
    await seal(platform, store)
    last = platform.app.max_position()
    delete_event(platform.settings, last)
    report = await verify(platform, store)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.notification_id) == ("truncated", last)


async def test_forged_checkpoints_are_detected(platform: Platform, store: CheckpointStore) -> None:
    write_history(platform)
    await seal(platform, store)
    victim = (await store.page(0, 1000))[2].checkpoint
    forger = CheckpointSigner("0x" + "42" * 32)

    # 1. a garbled signature
    rewrite_checkpoint(platform.settings, dataclasses.replace(victim, signature="0x" + "00" * 65))
    report = await verify(platform, store)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.checkpoint_size) == ("checkpoint", victim.tree_size)

    # 2. an event changed and its checkpoint re-signed by another key (recording that key):
    #    the signature is valid, but not the sealer's
    target = unpack_leaf_records((await store.page(0, 1000))[2].leaves)[0][0]
    overwrite_state(platform.settings, target, stored_state(platform.settings, target) + b" ")
    forged = forger.checkpoint(
        victim.tree_size, "ab" * 32, victim.last_notification_id, victim.created_at
    )
    rewrite_checkpoint(platform.settings, forged)
    report = await verify(platform, store)
    assert report.problem is not None
    assert "not by the sealer" in report.problem.message
    assert report.problem.checkpoint_size == victim.tree_size
    done = run_cli(platform.settings, "verify", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["problem"]["checkpointSize"] == victim.tree_size
    # an auditor pinning the forger's address instead sees the data mismatch
    pinned = await run_verify(platform.settings, signer=forger.address)
    assert pinned.problem is not None and pinned.problem.checkpoint_size is not None

    # 3. a sealer never extends a tree its key did not sign
    latest = await store.latest()
    assert latest is not None
    rewrite_checkpoint(
        platform.settings,
        forger.checkpoint(
            latest.tree_size,
            latest.checkpoint.root_hex,
            latest.checkpoint.last_notification_id,
            latest.checkpoint.created_at,
        ),
    )
    with pytest.raises(SealerStateError, match="not by the sealer"):
        await seal(platform, store)


async def test_a_resealed_store_is_caught_by_the_published_checkpoints(
    platform: Platform, store: CheckpointStore
) -> None:
    """With the sealer key itself stolen, an attacker can re-seal a rewritten log; the
    checkpoints already on the undeletable stream still disagree."""
    if not platform.settings.nats_url:
        pytest.skip("needs the NATS checkpoint stream")
    write_history(platform)
    await seal(platform, store)
    target = first_nid(platform, topics.GRANT_GRANTED)
    original = stored_state(platform.settings, target)
    overwrite_state(platform.settings, target, original.replace(b'"dev"', b'"DEV"'))
    table = sql.Identifier(platform.settings.database_schema or "public", POSTGRES_TABLE)
    with psycopg.connect(platform.settings.database_url or "", autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(table))
        conn.execute(sql.SQL("DELETE FROM {}").format(table))
    resealer = Sealer(
        raw_reader(platform.app.recorder),
        store,
        sealer_signer(platform.settings),  # the real key
        None,  # and not publishing
        every_events=EVERY,
        every_seconds=3600,
    )
    await resealer.seal_pending(force=True)
    report = await verify(platform, store)
    assert report.problem is not None
    assert "differs from the published" in report.problem.message


async def test_checkpoint_stream_is_undeletable(platform: Platform, store: CheckpointStore) -> None:
    if not platform.settings.nats_url:
        pytest.skip("needs NATS")
    write_history(platform)
    await seal(platform, store)
    publisher = await NatsCheckpointPublisher.connect(
        platform.settings.nats_url, platform.settings.nats_stream
    )
    try:
        name = checkpoint_stream_name(platform.settings.nats_stream)
        info = await publisher.js.stream_info(name)
        assert info.config.deny_delete and info.config.deny_purge
        assert not info.config.max_age
        published = await read_published_checkpoints(publisher.js, platform.settings.nats_stream)
        assert published == [r.checkpoint for r in await store.page(0, 1000, with_leaves=False)]
        assert all(
            signature_problem(c, trusted_sealer_addresses(platform.settings)) is None
            for c in published
        )
        import nats.js.errors

        with pytest.raises(nats.js.errors.APIError):
            await publisher.js.delete_msg(name, 1)
        with pytest.raises(nats.js.errors.APIError):
            await publisher.js.purge_stream(name)
        # a restarted sealer with nothing new publishes nothing twice
        await seal(platform, store)
        assert len(
            await read_published_checkpoints(publisher.js, platform.settings.nats_stream)
        ) == len(published)
        # checkpoints stored while NATS was unreachable are published by the next sealer
        write_history(platform, tag="-outage")
        offline = Sealer(
            raw_reader(platform.app.recorder),
            store,
            sealer_signer(platform.settings),
            None,
            every_events=EVERY,
        )
        await offline.seal_pending(force=True)
        assert offline.checkpoints_written > 1
        await seal(platform, store)
        stored = [r.checkpoint for r in await store.page(0, 1000, with_leaves=False)]
        assert len(stored) == len(published) + offline.checkpoints_written
        assert (
            await read_published_checkpoints(publisher.js, platform.settings.nats_stream) == stored
        )
    finally:
        await publisher.close()


async def test_unsealed_events_are_still_checked(
    platform: Platform, store: CheckpointStore
) -> None:
    write_history(platform)
    await seal(platform, store)
    write_history(platform, tag="-later")  # not sealed
    log = platform.app.read_log(0, 10_000)
    revoked = [e for e in log if e.topic == topics.KEY_REVOKED][-1]
    (limits,) = [
        e
        for e in log
        if e.topic == topics.KEY_LIMITS_CHANGED and e.originator_id == revoked.originator_id
    ]
    overwrite_state(platform.settings, limits.position, b"\xff not json")
    report = await verify(platform, store)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.notification_id) == ("decode", limits.position)

    delete_event(platform.settings, limits.position)
    report = await verify(platform, store)
    assert report.problem is not None
    # the key's LimitsChanged (version 2) is gone, so its Revoked (version 3) follows version 1
    assert (report.problem.kind, report.problem.notification_id) == ("version", revoked.position)
    assert "version 2 is missing" in report.problem.message


async def test_export_one_account_with_leaf_hashes_and_proofs(
    platform: Platform, store: CheckpointStore, tmp_path: Path
) -> None:
    write_history(platform)
    await seal(platform, store)
    write_history(platform, tag="-unsealed")
    wallet = WALLETS[0]
    account = ids.account_id(wallet)
    result = await export_account(platform.app, store, account)

    # expected: every event of an aggregate that is the account or carries its account_id
    members = {str(account)}
    expected = []
    for e in platform.app.read_log(0, 10_000):
        if e.data.get("account_id") == str(account):
            members.add(e.originator_id)
        if e.originator_id in members:
            expected.append(e.position)
    assert [x.notification_id for x in result.events] == expected
    found_topics = {x.topic for x in result.events}
    assert {
        topics.ACCOUNT_OPENED,
        topics.KEY_CREATED,
        topics.KEY_LIMITS_CHANGED,
        topics.KEY_REVOKED,
        topics.PURCHASE_COMPLETED,
        topics.GRANT_GRANTED,
        topics.HOLD_PLACED,
        topics.HOLD_SETTLED,
    } <= found_topics

    buffer = io.StringIO()
    write_export(result.events, "jsonl", buffer)
    assert "secret_hash" not in buffer.getvalue()
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    signer = trusted_sealer_addresses(platform.settings)
    proven = 0
    for line in lines:
        assert line["data"].get("account_id", str(account)) == str(account) or (
            line["originatorId"] in members
        )
        if line["stateRedacted"]:
            assert line["topic"] == topics.KEY_CREATED and line["state"] is None
        else:  # an auditor recomputes the leaf from the exported row alone
            leaf = event_leaf_hash(
                line["notificationId"],
                line["originatorId"],
                line["originatorVersion"],
                line["topic"],
                base64.b64decode(line["state"]),
            )
            assert leaf.hex() == line["leafHash"]
        if line["inclusion"] is None:
            continue
        checkpoint = Checkpoint.from_dict(line["inclusion"]["checkpoint"])
        assert signature_problem(checkpoint, signer) is None
        assert verify_inclusion(
            bytes.fromhex(line["leafHash"]),
            line["leafIndex"],
            checkpoint.tree_size,
            [bytes.fromhex(p) for p in line["inclusion"]["path"]],
            checkpoint.root,
        )
        proven += 1
    assert 0 < proven < len(lines)  # the unsealed tail has no proof yet

    # the time window filters by event timestamp
    future = await export_account(
        platform.app, store, account, start=datetime.now(UTC) + timedelta(days=1)
    )
    assert future.events == []

    # the CLI, by wallet, to a CSV file
    out = tmp_path / "account.csv"
    done = run_cli(
        platform.settings, "export", "--account", wallet, "--format", "csv", "--output", str(out)
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "secret_hash" not in text
    assert len(text.strip().splitlines()) == 1 + len(expected)


async def test_sealer_key_rotation(platform: Platform, store: CheckpointStore) -> None:
    """A new sealer key continues the old key's tree once PRYV_SEALER_ADDRESS lists the old
    address before the new one; verify accepts that history, in that order only."""
    write_history(platform)
    await seal(platform, store)  # by the data dir's key, about to be retired
    old = sealer_signer(platform.settings)
    new = CheckpointSigner("0x" + "24" * 32)
    history = (old.address, new.address)

    def sealer_with(signer: CheckpointSigner, trusted: tuple[str, ...]) -> Sealer:
        return Sealer(
            raw_reader(platform.app.recorder),
            store,
            signer,
            None,
            every_events=EVERY,
            every_seconds=3600,
            trusted_signers=trusted,
        )

    async def verify_with(trusted: tuple[str, ...]) -> VerifyReport:
        return await verify_log(raw_reader(platform.app.recorder), store, trusted_signers=trusted)

    first_size = (await store.page(0, 1, with_leaves=False))[0].checkpoint.tree_size
    with pytest.raises(SealerStateError, match="not by the sealer"):  # rotation not declared
        await sealer_with(new, ()).seal_pending(force=True)
    with pytest.raises(SealerStateError, match="not among the sealer addresses"):
        await sealer_with(new, (old.address,)).seal_pending(force=True)

    write_history(platform, tag="-rotated")
    rotated = sealer_with(new, history)
    assert await rotated.seal_pending(force=True) > 0
    latest = await store.latest()
    assert latest is not None and latest.checkpoint.signer == new.address
    clean = await verify_with(history)
    assert clean.ok, clean.problem
    assert clean.to_dict()["signers"] == list(history)
    assert clean.to_dict()["signer"] == new.address
    # trusting only the new key, the old key's checkpoints are foreign
    only_new = await verify_with((new.address,))
    assert only_new.problem is not None and only_new.problem.checkpoint_size == first_size
    # the same two keys in the other order: the old key signing after the new one is refused
    reversed_order = await verify_with((new.address, old.address))
    assert reversed_order.problem is not None and "retired" in reversed_order.problem.message

    # the retired key never seals again...
    write_history(platform, tag="-late")
    with pytest.raises(SealerStateError, match="retired key must not seal"):
        await sealer_with(old, history).seal_pending(force=True)
    # ...and a checkpoint it signs after the rotation fails verification
    victim = latest.checkpoint
    rewrite_checkpoint(
        platform.settings,
        old.checkpoint(
            victim.tree_size, victim.root_hex, victim.last_notification_id, victim.created_at
        ),
    )
    late = await verify_with(history)
    assert late.problem is not None and late.problem.checkpoint_size == victim.tree_size
    assert "retired sealer key" in late.problem.message


def delete_checkpoints_after(settings: Settings, size: int) -> None:
    """An insider drops the newest checkpoints (disabling the append-only guard first)."""
    if settings.database_url:
        table = sql.Identifier(settings.database_schema or "public", POSTGRES_TABLE)
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(table))
            conn.execute(sql.SQL("DELETE FROM {} WHERE tree_size > %s").format(table), (size,))
        return
    name = SqliteCheckpointStore.TABLE
    with sqlite3.connect(settings.data_dir / "checkpoints.sqlite") as conn:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}_no_delete")
        conn.execute(f"DELETE FROM {name} WHERE tree_size > ?", (size,))


async def test_an_outsider_holds_the_log_to_a_head_it_saved(
    platform: Platform, store: CheckpointStore, tmp_path: Path
) -> None:
    from audit.feed import public_consistency, public_heads
    from domain.merkle import Checkpoint, verify_consistency

    write_history(platform, "a")
    await seal(platform, store)
    page = await public_heads(platform.settings, 0, 1000)
    assert page["signers"] and page["data"]
    saved = page["data"][-1]  # what the auditor keeps
    head_file = tmp_path / "head.json"
    head_file.write_text(json.dumps(saved))
    write_history(platform, "b")
    await seal(platform, store)
    later = (await public_heads(platform.settings, saved["treeSize"], 1000))["data"][-1]
    proof = await public_consistency(platform.settings, saved["treeSize"], later["treeSize"])
    assert verify_consistency(
        saved["treeSize"],
        later["treeSize"],
        bytes.fromhex(saved["rootHex"]),
        bytes.fromhex(later["rootHex"]),
        [bytes.fromhex(p) for p in proof["proof"]],
    )
    assert not verify_consistency(  # a proof for another history does not pass
        saved["treeSize"],
        later["treeSize"],
        bytes(32),
        bytes.fromhex(later["rootHex"]),
        [bytes.fromhex(p) for p in proof["proof"]],
    )
    held = Checkpoint.from_dict(saved)
    report = await verify_log(
        raw_reader(platform.app.recorder),
        store,
        trusted_signers=trusted_sealer_addresses(platform.settings),
        trusted_heads=[held],
    )
    assert report.ok and report.trusted_heads_checked == 1
    cli = run_cli(platform.settings, "verify", "--json", "--trusted-head", str(head_file))
    assert cli.returncode == 0 and json.loads(cli.stdout)["trustedHeadsChecked"] == 1
    # A head nobody signed is refused.
    forged = dataclasses.replace(held, root_hex="00" * 32)
    report = await verify_log(
        raw_reader(platform.app.recorder),
        store,
        trusted_signers=trusted_sealer_addresses(platform.settings),
        trusted_heads=[forged],
    )
    assert report.problem is not None and report.problem.kind == "trusted-head"
    # The insider drops the newest events and their checkpoints: verify alone would pass on
    # what is left; the head the auditor holds does not.
    latest = Checkpoint.from_dict(later)
    for nid in range(held.last_notification_id + 1, latest.last_notification_id + 1):
        delete_event(platform.settings, nid)
    delete_checkpoints_after(platform.settings, held.tree_size)
    head_file.write_text(json.dumps(later))
    cli = run_cli(platform.settings, "verify", "--json", "--trusted-head", str(head_file))
    assert cli.returncode == 1, cli.stderr
    problem = json.loads(cli.stdout)["problem"]
    if not platform.settings.nats_url:  # (with NATS the published stream catches it first)
        assert problem["kind"] == "trusted-head" and "truncated" in problem["message"]


async def test_the_checkpoint_feed_is_public_over_http(
    platform: Platform, store: CheckpointStore
) -> None:
    import httpx

    from tests.gateway_harness import serving

    write_history(platform, "feed")
    await seal(platform, store)
    async with serving(platform) as url, httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/v1/audit/checkpoints")  # no credentials at all
        assert page.status_code == 200 and "public" in page.headers["cache-control"]
        heads = page.json()["data"]
        assert heads and {"treeSize", "rootHex", "signature", "payload"} <= set(heads[0])
        first, last = heads[0]["treeSize"], heads[-1]["treeSize"]
        proof = await http.get(f"/v1/audit/consistency?first={first}&second={last}")
        assert proof.status_code == 200 and proof.json()["second"]["treeSize"] == last
        missing = await http.get(f"/v1/audit/consistency?first={first}&second={last + 1}")
        assert missing.status_code in (400, 404)
        backwards = await http.get(f"/v1/audit/consistency?first={last}&second={first}")
        assert backwards.status_code == 400 if first < last else backwards.status_code == 200


async def test_deleted_checkpoints_or_a_deleted_stream_fail_verify(
    platform: Platform, store: CheckpointStore
) -> None:
    write_history(platform, "gone")
    await seal(platform, store)
    if platform.settings.nats_url:  # the insider deletes the undeletable stream as a whole
        import nats

        nc = await nats.connect(platform.settings.nats_url)
        try:
            await nc.jetstream().delete_stream(
                checkpoint_stream_name(platform.settings.nats_stream)
            )
        finally:
            await nc.close()
        cli = run_cli(platform.settings, "verify", "--json")
        assert cli.returncode == 1
        assert "the stream was deleted" in json.loads(cli.stdout)["problem"]["message"]
    delete_checkpoints_after(platform.settings, 0)  # every checkpoint
    cli = run_cli(platform.settings, "verify", "--json")
    assert cli.returncode == 1, cli.stdout
    assert "no checkpoint" in json.loads(cli.stdout)["problem"]["message"]
    if not platform.settings.nats_url:
        assert run_cli(platform.settings, "verify", "--allow-unsealed").returncode == 0


async def test_balance_at_a_moment_equals_a_fold_of_the_export(
    platform: Platform, store: CheckpointStore
) -> None:
    write_history(platform, "t1")
    middle = platform.app.read_log(0, 100_000)[-1].timestamp  # everything so far, and no more
    await asyncio.sleep(0.01)
    write_history(platform, "t2")  # after the moment: must not count
    wallet = WALLETS[0]
    cli = run_cli(platform.settings, "balance", "--wallet", wallet, "--at", middle)
    assert cli.returncode == 0, cli.stderr
    at = json.loads(cli.stdout)
    exported = run_cli(
        platform.settings,
        "export",
        "--account",
        wallet,
        "--to",
        (datetime.fromisoformat(middle) + timedelta(microseconds=1)).isoformat(),
    )
    assert exported.returncode == 0, exported.stderr
    fold = 0
    for line in exported.stdout.splitlines():
        event = json.loads(line)
        data = event["data"]
        if event["topic"] == topics.PURCHASE_COMPLETED:
            fold += data["credits_micros"]
        elif event["topic"] == topics.HOLD_SETTLED and data["env"] == "live":
            fold -= data["actual_micros"]
    assert at["balanceMicros"] == fold > 0
    now = json.loads(
        run_cli(
            platform.settings, "balance", "--wallet", wallet, "--at", datetime.now(UTC).isoformat()
        ).stdout
    )
    assert now["balanceMicros"] > at["balanceMicros"]  # the second history added credit


async def test_every_event_of_one_key(platform: Platform, store: CheckpointStore) -> None:
    write_history(platform, "k")
    created = [e for e in platform.app.read_log(0, 100_000) if e.topic == topics.KEY_CREATED]
    key_id = created[0].data["key_id"]
    cli = run_cli(platform.settings, "events", "--key", key_id)
    assert cli.returncode == 0, cli.stderr
    events = [json.loads(line) for line in cli.stdout.splitlines()]
    kinds = [e["topic"] for e in events]
    assert kinds[0] == topics.KEY_CREATED and topics.KEY_LIMITS_CHANGED in kinds
    assert kinds.count(topics.HOLD_PLACED) == 3 and kinds.count(topics.HOLD_SETTLED) == 2
    assert all(
        e["data"].get("key_id") == key_id or e["topic"].startswith("pryv.ApiKey.") for e in events
    )
    bad = run_cli(platform.settings, "events", "--key", "not a key")
    assert bad.returncode == 2


async def test_the_finance_ledger_csv_totals_equal_the_balance(
    platform: Platform, store: CheckpointStore
) -> None:
    import csv
    from decimal import Decimal

    write_history(platform, "csv")
    wallet = WALLETS[1]
    month = datetime.now(UTC).strftime("%Y-%m")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "finance",
            "ledger",
            "--wallet",
            wallet,
            "--month",
            month,
        ],
        env=cli_env(platform.settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert {r["type"] for r in rows} >= {"purchase", "grant", "usage"}
    live = sum(Decimal(r["amount_usd"]) for r in rows if r["env"] == "live")
    from projections.finance import live_postings

    postings = live_postings(platform.app.read_log(0, 100_000))
    assert live * 1_000_000 == postings[str(ids.account_id(wallet))]
    other = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "finance",
            "ledger",
            "--wallet",
            wallet,
            "--month",
            "1999-01",
        ],
        env=cli_env(platform.settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert other.returncode == 0 and len(other.stdout.strip().splitlines()) == 1  # header only


def test_reconcile_refuses_a_csv_that_is_not_stripes(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "pryv", key_pepper=b"p")
    settings.data_dir.mkdir()
    (settings.data_dir / "key_pepper").write_text(b"p".hex())
    from bootstrap.platform import open_application

    open_application(settings).close()
    env = {
        **relay_env(settings),
        "PRYV_DATABASE_URL": "",
        "PRYV_REDIS_URL": "",
        "PRYV_NATS_URL": "",
    }
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("id,amount\n1,2\n")
    run = [sys.executable, "-m", "cli.main", "finance", "reconcile", "--stripe-csv"]
    for path, needle in ((wrong, "no column"), (tmp_path / "absent.csv", "No such file")):
        done = subprocess.run(
            [*run, str(path)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 2, done.stderr
        assert needle in done.stderr and "Traceback" not in done.stderr
    unreachable = subprocess.run(
        [sys.executable, "-m", "cli.main", "finance", "reconcile"],
        env={
            **env,
            "PRYV_STRIPE_SECRET_KEY": "sk_test_x",
            "PRYV_STRIPE_API_BASE": "http://127.0.0.1:1",
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unreachable.returncode == 3, unreachable.stderr
    assert "Traceback" not in unreachable.stderr


async def test_export_all_streams_every_event_with_a_proof(
    platform: Platform, store: CheckpointStore
) -> None:
    from domain.merkle import root_from_inclusion

    write_history(platform, "all")
    await seal(platform, store)
    cli = run_cli(platform.settings, "export", "--all")
    assert cli.returncode == 0, cli.stderr
    lines = [json.loads(line) for line in cli.stdout.splitlines()]
    assert [e["notificationId"] for e in lines] == [
        e.position for e in platform.app.read_log(0, 100_000)
    ]
    for e in lines:  # each leaf proves into the signed root it names
        inclusion = e["inclusion"]
        assert inclusion is not None
        root = root_from_inclusion(
            bytes.fromhex(e["leafHash"]),
            e["leafIndex"],
            inclusion["treeSize"],
            [bytes.fromhex(p) for p in inclusion["path"]],
        )
        assert root is not None and root.hex() == inclusion["checkpoint"]["rootHex"]
    as_csv = run_cli(platform.settings, "export", "--all", "--format", "csv")
    assert as_csv.returncode == 0
    assert len(as_csv.stdout.strip().splitlines()) == len(lines) + 1  # one header
    assert run_cli(platform.settings, "export").returncode == 2  # neither --account nor --all


async def test_serve_with_workers_seals_on_production_backends(
    services_settings: Settings, tmp_path: Path
) -> None:
    """`pryv serve --workers` on PostgreSQL + Redis + NATS runs the sealer too."""
    from bootstrap.platform import open_platform
    from tests.fakes.upstream import running_fake_upstream
    from tests.gateway_harness import write_catalog
    from tests.integration.test_gateway_crash import gateway_process

    platform = await open_platform(services_settings)
    checkpoints = await open_checkpoint_store(services_settings)
    try:
        await asyncio.to_thread(
            platform.app.grant_credits,
            authorization=OPERATOR,
            wallet=WALLETS[0],
            env="test",
            amount_micros=1,
            reason="t",
            granted_by="test",
            grant_ref="seal-me",
        )
        with running_fake_upstream() as upstream:
            catalog = write_catalog(tmp_path, upstream)
            async with gateway_process(services_settings, catalog):
                deadline = asyncio.get_running_loop().time() + 90
                while (await checkpoints.latest()) is None:
                    assert asyncio.get_running_loop().time() < deadline, "nothing was sealed"
                    await asyncio.sleep(0.2)
        latest = await checkpoints.latest()
        assert latest is not None and latest.tree_size >= 1
    finally:
        await checkpoints.close()
        await platform.close()
        await delete_checkpoint_stream(services_settings)


async def test_reconcile_as_csv_names_accounts_by_wallet(
    platform: Platform, store: CheckpointStore, tmp_path: Path
) -> None:
    import csv

    write_history(platform, "rc")
    empty = tmp_path / "stripe.csv"
    empty.write_text(
        "balance_transaction_id,created_utc,currency,gross,fee,net,reporting_category,"
        "source_id,description,charge_id,payment_intent_id,dispute_id,refund_id\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "finance",
            "reconcile",
            "--format",
            "csv",
            "--stripe-csv",
            str(empty),
        ],
        env=cli_env(platform.settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr  # the ledger's charges are not in Stripe's file
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    payments = [r for r in rows if r["section"] == "payment"]
    assert payments and {r["status"] for r in payments} == {"missing_in_stripe"}
    accounts = {r["wallet"] for r in rows if r["section"] == "account"}
    assert set(WALLETS) <= accounts
