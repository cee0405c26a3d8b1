"""Ledger benchmark: durable events/s through the group-commit writer, and projection lag.

    uv run python -m bench.ledger                      # PostgreSQL + NATS + Redis on loopback
    uv run python -m bench.ledger --rates 1000 5000 --seconds 10

1. Throughput: K concurrent producers each `await writer.save(hold)` (what the request path
   does for every hold and settlement) for a few seconds; events/s and the mean batch size.
2. Lag: events offered at a fixed rate (open loop: a schedule, not "as fast as the last one
   returns") through the writer, while `pryv relay` and `pryv project` run as processes of their
   own (as in production); lag is the time from an append's commit to the Redis read model's
   position covering it (p50/p99).
Everything lives under a unique schema / Redis prefix / NATS stream, removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import redis

from bootstrap.platform import Platform, open_platform
from commands.group_commit import GroupCommitWriter
from domain import ids
from infra.settings import Settings

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
WALLET = "0x" + "be" * 20


def new_hold(platform: Platform, n: int, run: str) -> object:
    return platform.app.new_hold(
        key_id="B" * 16,
        request_id=f"{run}-{n}",
        account_id=str(ids.account_id(WALLET)),
        env="live",
        amount_micros=1,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        model="bench",
    )


async def throughput(platform: Platform, producers: int, seconds: float) -> tuple[float, float]:
    writer = GroupCommitWriter(platform.app)
    run = uuid.uuid4().hex[:8]
    deadline = time.perf_counter() + seconds
    counter = 0

    async def producer(p: int) -> None:
        nonlocal counter
        n = 0
        while time.perf_counter() < deadline:
            await writer.save(new_hold(platform, n, f"{run}-{p}"))
            n += 1
            counter += 1

    started = time.perf_counter()
    await asyncio.gather(*(producer(p) for p in range(producers)))
    elapsed = time.perf_counter() - started
    await writer.close()
    batches = sum(writer.batch_sizes.values())
    return counter / elapsed, counter / max(batches, 1)


def worker_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "PRYV_DATA_DIR": str(settings.data_dir),
        "PRYV_DATABASE_URL": settings.database_url or "",
        "PRYV_DATABASE_SCHEMA": settings.database_schema or "",
        "PRYV_REDIS_URL": settings.redis_url or "",
        "PRYV_REDIS_PREFIX": settings.redis_prefix,
        "PRYV_NATS_URL": settings.nats_url or "",
        "PRYV_NATS_STREAM": settings.nats_stream,
        "PRYV_KEY_PEPPER": settings.key_pepper.hex(),
        "PRYV_LOG_FORMAT": "text",
    }


async def lag(platform: Platform, rate: int, seconds: float) -> list[float]:
    writer = GroupCommitWriter(platform.app)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "cli.main", role],
            env=worker_env(platform.settings),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for role in ("relay", "project")
    ]
    backlog = await asyncio.to_thread(platform.app.max_position)
    while (await platform.read_store.position("balance")).position < backlog:
        await asyncio.sleep(0.05)
    committed: dict[int, float] = {}
    run = uuid.uuid4().hex[:8]

    async def one(n: int) -> None:
        result = await writer.save(new_hold(platform, n, run))
        assert result.position is not None
        committed[result.position] = time.perf_counter()

    seen: dict[int, float] = {}
    pending: set[asyncio.Task[None]] = set()
    total = int(rate * seconds)
    started = time.perf_counter()

    done = asyncio.Event()

    async def watch() -> None:
        # Stopped by a flag, never cancelled: a cancel landing inside redis-py's read of a
        # reply can be swallowed (redis/redis-py#2028 class), and the watcher then never ends.
        while not done.is_set():
            position = (await platform.read_store.position("balance")).position
            now = time.perf_counter()
            for p in [p for p in committed if p <= position and p not in seen]:
                seen[p] = now
            await asyncio.sleep(0.002)

    watcher = asyncio.create_task(watch())
    for n in range(total):
        due = started + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(n))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*list(pending))
    offered = time.perf_counter() - started
    while len(seen) < len(committed):
        await asyncio.sleep(0.01)
    done.set()
    await watcher
    for worker in workers:
        worker.terminate()
        worker.wait(10)
    await writer.close()
    print(f"  offered {total:,} events in {offered:.1f} s ({total / offered:,.0f}/s achieved)")
    return sorted((seen[p] - committed[p]) * 1000 for p in committed)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--producers", type=int, nargs="*", default=[1, 16, 64, 256])
    parser.add_argument("--rates", type=int, nargs="*", default=[1000, 5000])
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    suffix = uuid.uuid4().hex[:10]
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp()),
        database_url=POSTGRES_URL,
        database_schema=f"bench_{suffix}",
        redis_url="redis://127.0.0.1:6379/0",
        redis_prefix=f"bench_{suffix}",
        nats_url="nats://127.0.0.1:4222",
        nats_stream=f"BENCH_{suffix.upper()}",
        key_pepper=b"bench",
    )
    platform = await open_platform(settings)
    try:
        print("# durable appends through the group-commit writer (PostgreSQL)")
        for producers in args.producers:
            rate, batch = await throughput(platform, producers, args.seconds)
            print(
                f"{producers:>4} concurrent producers: {rate:8,.0f} events/s "
                f"(mean {batch:.1f} events per transaction)"
            )
        print("# projection lag, append commit -> Redis read model (relay + NATS + projector)")
        for rate in args.rates:
            lags = await lag(platform, rate, args.seconds)
            print(
                f"  at {rate:,} events/s: p50 {pct(lags, 0.5):.1f} ms, p99 "
                f"{pct(lags, 0.99):.1f} ms, max {max(lags):.1f} ms, "
                f"mean {statistics.fmean(lags):.1f} ms"
            )
    finally:
        await platform.close()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "bench_{suffix}" CASCADE')
        client = redis.Redis()
        for key in client.scan_iter(match=f"bench_{suffix}:*", count=10_000):
            client.delete(key)
        import nats

        nc = await nats.connect("nats://127.0.0.1:4222")
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(settings.nats_stream)
        await nc.close()


if __name__ == "__main__":
    asyncio.run(main())
