"""Audit benchmark: sealer and `pryv audit verify` throughput over a synthesized log.

    uv run python bench/audit.py                              # 1,000,000 events, temp SQLite
    uv run python bench/audit.py --events 200000 --postgres   # also PostgreSQL (schema dropped)

Writes N CreditGrant events (batched `app.save`, --batch per transaction, spread over --wallets
accounts), then measures:
- sealer: raw log -> leaf hashes -> accumulator -> a signed, stored checkpoint every 1000 events
  (what `pryv audit seal` does), in events/s;
- resume: a second sealer picking up from the last checkpoint (compact state) and sealing 1,000
  more events — the restart cost, independent of the log's length;
- verify: the full check (leaf records, decode of every event, per-aggregate versions, every
  checkpoint's signature/root/last id/resume state), in events/s;
- export: one account's events with inclusion proofs (streams the whole log once).
Everything lives in a temporary directory / a unique schema, removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from audit.export import export_account
from audit.sealer import Sealer, raw_reader
from audit.verify import verify_log
from bootstrap.platform import open_application
from domain import ids
from domain.aggregates import CreditGrant
from infra.checkpoints import (
    CheckpointStore,
    open_checkpoint_store,
    sealer_signer,
    trusted_sealer_addresses,
)
from infra.settings import Settings

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def synthesize(settings: Settings, events: int, batch: int, wallets: int) -> float:
    """Append `events` grants; returns events/s."""
    app = open_application(settings)
    try:
        accounts = [(f"0x{w:040x}", str(ids.account_id(f"0x{w:040x}"))) for w in range(wallets)]
        run = uuid.uuid4().hex[:8]
        started = time.perf_counter()
        for start in range(0, events, batch):
            app.save(
                *[
                    CreditGrant(
                        grant_ref=f"bench-{run}-{n}",
                        account_id=accounts[n % wallets][1],
                        wallet=accounts[n % wallets][0],
                        env="live",
                        amount_micros=1_000 + n % 997,
                        reason="bench",
                        granted_by="bench",
                    )
                    for n in range(start, min(start + batch, events))
                ]
            )
            done = min(start + batch, events)
            if done % 100_000 == 0:
                rate = done / (time.perf_counter() - started)
                print(f"  written {done:,} events ({rate:,.0f}/s)", flush=True)
        return events / (time.perf_counter() - started)
    finally:
        app.close()


async def measure(settings: Settings, label: str, every: int) -> None:
    app = open_application(settings)
    store: CheckpointStore = await open_checkpoint_store(settings)
    signer = sealer_signer(settings)
    try:
        total = app.max_position()
        sealer = Sealer(raw_reader(app.recorder), store, signer, every_events=every, page_size=2000)
        started = time.perf_counter()
        await sealer.seal_pending(force=True)
        seal_s = time.perf_counter() - started
        print(
            f"[{label}] sealer: {sealer.tree_size:,} events, {sealer.checkpoints_written:,} "
            f"checkpoints in {seal_s:.1f} s = {sealer.tree_size / seal_s:,.0f} events/s"
        )

        # restart cost: resume from the stored compact state and seal 1,000 more
        wallet = "0x" + "ab" * 20
        app.save(
            *[
                CreditGrant(
                    grant_ref=f"bench-tail-{uuid.uuid4()}",
                    account_id=str(ids.account_id(wallet)),
                    wallet=wallet,
                    env="live",
                    amount_micros=1,
                    reason="bench",
                    granted_by="bench",
                )
                for _ in range(1000)
            ]
        )
        restarted = Sealer(raw_reader(app.recorder), store, signer, every_events=every)
        started = time.perf_counter()
        await restarted.seal_pending(force=True)
        print(
            f"[{label}] restart: resumed at {sealer.tree_size:,} and sealed "
            f"{restarted.sealed_events:,} more in {(time.perf_counter() - started) * 1000:.0f} ms"
        )

        report = await verify_log(
            raw_reader(app.recorder),
            store,
            trusted_signers=trusted_sealer_addresses(settings),
            decode=app.mapper.to_domain_event,  # type: ignore[arg-type]
            page_size=2000,
        )
        assert report.ok, report.render()
        print(
            f"[{label}] verify: {report.events:,} events, {report.checkpoints:,} checkpoints in "
            f"{report.seconds:.1f} s = {report.events_per_second:,.0f} events/s"
        )
        started = time.perf_counter()
        result = await export_account(app, store, ids.account_id(f"0x{0:040x}"))
        print(
            f"[{label}] export: {len(result.events):,} events of one account with proofs in "
            f"{time.perf_counter() - started:.1f} s (log of {total + 1000:,})"
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"[{label}] peak RSS so far: {peak:,.0f} MiB")
    finally:
        await store.close()
        app.close()


def run(settings: Settings, label: str, args: argparse.Namespace) -> None:
    print(f"[{label}] writing {args.events:,} events, {args.batch} per transaction ...")
    rate = synthesize(settings, args.events, args.batch, args.wallets)
    print(f"[{label}] append: {rate:,.0f} events/s")
    asyncio.run(measure(settings, label, args.every))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--wallets", type=int, default=1000)
    parser.add_argument("--every", type=int, default=1000, help="events per checkpoint")
    parser.add_argument("--postgres", action="store_true", help="also run on PostgreSQL")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pryv-bench-audit-") as tmp:
        if not args.no_sqlite:
            run(Settings(data_dir=Path(tmp) / "sqlite"), "sqlite", args)
        if args.postgres:
            schema = f"bench_audit_{uuid.uuid4().hex[:8]}"
            settings = Settings(
                data_dir=Path(tmp) / "pg", database_url=POSTGRES_URL, database_schema=schema
            )
            try:
                run(settings, "postgres", args)
            finally:
                with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
