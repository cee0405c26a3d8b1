"""Projection rebuild throughput over a synthesized log (what `pryv projections rebuild` does).

    uv run python -m bench.rebuild                        # 1,000,000 events, temp SQLite
    uv run python -m bench.rebuild --events 200000 --redis

Appends N CreditGrant events (batched), then rebuilds every projection into a new generation
— reading the log in pages, projecting, applying each page in one atomic step — and swaps it
in; prints events/s for the in-memory store and, with --redis, for Redis (unique prefix,
deleted afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import redis

from bench.audit import synthesize
from bootstrap.platform import open_application
from infra.read_store_memory import MemoryReadStore
from infra.read_store_redis import RedisReadStore
from infra.settings import Settings
from projections.store import ReadStore
from workers.rebuild import RebuildProgress, rebuild


async def measure(settings: Settings, store: ReadStore, label: str) -> None:
    app = open_application(settings)
    last = [0.0]

    def progress(p: RebuildProgress) -> None:
        if p.elapsed - last[0] >= 10:
            last[0] = p.elapsed
            print(f"  {label}: {p.events:,} events, {p.events_per_second:,.0f} ev/s", flush=True)

    try:
        started = time.perf_counter()
        generations = await rebuild(
            app.read_log,
            app.max_position,
            store,
            page_size=2000,
            drop_after=0.0,
            on_progress=progress,
        )
        elapsed = time.perf_counter() - started
        events = app.max_position()
        print(
            f"rebuild into {label}: {events:,} events in {elapsed:.1f} s = "
            f"{events / elapsed:,.0f} events/s (now generation {max(generations.values())})"
        )
    finally:
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--wallets", type=int, default=1000)
    parser.add_argument("--redis", action="store_true")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="pryv-bench-rebuild-"))
    try:  # the ~440 MB SQLite log of a 1M run goes with the run
        settings = Settings(data_dir=data_dir, key_pepper=b"bench")
        rate = synthesize(settings, args.events, args.batch, args.wallets)
        print(f"appended {args.events:,} events at {rate:,.0f} events/s")
        asyncio.run(measure(settings, MemoryReadStore(), "memory"))
        if args.redis:
            prefix = f"benchrebuild_{uuid.uuid4().hex[:8]}"
            store = RedisReadStore.from_url("redis://127.0.0.1:6379/0", prefix)
            try:
                asyncio.run(measure(settings, store, "Redis"))
            finally:
                client = redis.Redis()
                for key in client.scan_iter(match=f"{prefix}:*", count=10_000):
                    client.delete(key)

    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
