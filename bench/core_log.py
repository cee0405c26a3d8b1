"""Core log benchmark: append rate (single vs batched saves) and projection lag end to end.

    uv run python bench/core_log.py                 # PostgreSQL + NATS + Redis on loopback
    uv run python bench/core_log.py --embedded      # SQLite + in-process bus + memory

Append rate: grants saved one per transaction, then 200 per transaction (group commit).
Projection lag: events appended at a steady rate while relay -> bus -> projector -> read store
run in this process (no in-process wake-ups: the relay polls, as a separate process would);
lag = first time the read store's position covers an event minus the time its append returned.
Everything is created under a unique schema / prefix / stream and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
import redis

from bootstrap.platform import Platform, open_platform
from domain import ids
from domain.aggregates import CreditGrant
from infra.settings import Settings
from workers.projector import Projector
from workers.relay import Relay

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def grant(wallet: str, n: int) -> CreditGrant:
    return CreditGrant(
        grant_ref=f"bench-{uuid.uuid4()}-{n}",
        account_id=str(ids.account_id(wallet)),
        wallet=wallet,
        env="live",
        amount_micros=1,
        reason="bench",
        granted_by="bench",
    )


def append_rate(platform: Platform, count: int, batch: int) -> float:
    wallet = f"0x{uuid.uuid4().hex[:40]}"
    started = time.perf_counter()
    for start in range(0, count, batch):
        platform.app.save(*[grant(wallet, n) for n in range(start, min(start + batch, count))])
    return count / (time.perf_counter() - started)


async def projection_lag(platform: Platform, rate: int, seconds: float) -> list[float]:
    stop = asyncio.Event()
    relay = Relay(platform.app.read_log, platform.bus, poll_interval=0.01)
    projector = Projector(platform.bus, platform.read_store)
    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(projector.run(stop))]
    appended: dict[int, float] = {}
    seen: dict[int, float] = {}
    done = threading.Event()

    def writer() -> None:
        wallet = f"0x{uuid.uuid4().hex[:40]}"
        interval = 1.0 / rate
        next_at = time.perf_counter()
        end = next_at + seconds
        n = 0
        while next_at < end:
            recordings = platform.app.save(grant(wallet, n))
            appended[recordings[-1].notification.id] = time.perf_counter()
            n += 1
            next_at += interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        done.set()

    backlog = platform.app.max_position()  # earlier phases' events: catch up before measuring
    while (await platform.read_store.position("balance")).position < backlog:
        await asyncio.sleep(0.01)
    thread = threading.Thread(target=writer)
    thread.start()
    while not (done.is_set() and appended and seen.get(max(appended)) is not None):
        position = (await platform.read_store.position("balance")).position
        now = time.perf_counter()
        for pos in [p for p in appended if p <= position and p not in seen]:
            seen[pos] = now
        await asyncio.sleep(0.001)
    thread.join()
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return sorted((seen[p] - appended[p]) * 1000 for p in appended)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--embedded", action="store_true")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rate", type=int, nargs="*", default=[100, 300])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    suffix = uuid.uuid4().hex[:10]
    tmp = Path(tempfile.mkdtemp())
    if args.embedded:
        settings = Settings(data_dir=tmp, key_pepper=b"bench")
    else:
        settings = Settings(
            data_dir=tmp,
            database_url=POSTGRES_URL,
            database_schema=f"bench_{suffix}",
            redis_url="redis://127.0.0.1:6379/0",
            redis_prefix=f"bench_{suffix}",
            nats_url="nats://127.0.0.1:4222",
            nats_stream=f"BENCH_{suffix.upper()}",
            key_pepper=b"bench",
        )
    platform = await open_platform(settings)
    kind = "embedded (SQLite)" if args.embedded else "PostgreSQL + NATS + Redis"
    try:
        print(f"# {kind}")
        single = append_rate(platform, min(args.count, 1000), 1)
        batched = append_rate(platform, args.count * 5, 200)
        print(f"append, 1 event/transaction:    {single:8.0f} events/s")
        print(f"append, 200 events/transaction: {batched:8.0f} events/s")
        for rate in args.rate:
            lags = await projection_lag(platform, rate, args.seconds)
            print(
                f"projection lag at {rate:4d} events/s ({len(lags)} events): "
                f"p50 {pct(lags, 0.5):6.1f} ms  p99 {pct(lags, 0.99):6.1f} ms  "
                f"max {max(lags):6.1f} ms  mean {statistics.fmean(lags):6.1f} ms"
            )
    finally:
        stream = settings.nats_stream
        await platform.close()
        if not args.embedded:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "bench_{suffix}" CASCADE')
            client = redis.Redis()
            for key in client.scan_iter(match=f"bench_{suffix}:*"):
                client.delete(key)
            import nats

            nc = await nats.connect("nats://127.0.0.1:4222")
            await nc.jetstream().delete_stream(stream)
            await nc.close()


if __name__ == "__main__":
    asyncio.run(main())
