"""Reconciliation memory: peak RSS of `pryv finance reconcile` as the log grows.

    uv run python -m bench.finance                       # 10,000 and 100,000 events, temp SQLite
    uv run python -m bench.finance --sizes 20000 200000

For each size: a fresh embedded store with one Stripe purchase per 500 events and otherwise
settled usage holds (the bulk of a real log), then `pryv finance reconcile --stripe-csv` (an
empty export) runs as its own process; its peak RSS (ru_maxrss) and wall time are printed.
Reconcile folds the log page by page and keeps only what it reports, so RSS should stay flat
while the log grows tenfold.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bootstrap.platform import open_application
from domain import ids
from domain.evidence import stripe_event
from infra.settings import Settings

CSV_HEADER = (
    "balance_transaction_id,created_utc,currency,gross,fee,net,reporting_category,"
    "source_id,description,charge_id,payment_intent_id,dispute_id,refund_id\n"
)


RECONCILE = [sys.executable, "-m", "cli.main", "finance", "reconcile", "--json"]


def synthesize(data_dir: Path, events: int) -> None:
    settings = Settings(data_dir=data_dir, key_pepper=b"bench")
    (data_dir / "key_pepper").write_text(b"bench".hex())
    app = open_application(settings)
    wallet = "0x" + "be" * 20
    account = str(ids.account_id(wallet))
    expires = datetime.now(UTC) + timedelta(hours=1)
    try:
        written = 0
        while written < events:
            app.record_purchase(
                source_id=f"cs_{written}",
                wallet=wallet,
                usd_micros=50_000_000,
                payment_intent=f"pi_{written}",
                evidence=stripe_event(f"evt_{written}"),
            )
            holds = []
            for n in range(249):
                hold = app.new_hold(
                    key_id="benchkey00000000",
                    request_id=f"r{written}-{n}",
                    account_id=account,
                    env="live",
                    amount_micros=1_000,
                    expires_at=expires,
                    model="m",
                )
                hold.settle(
                    cost_micros=500, tokens_in=10, tokens_out=5, outcome="ok", estimated=False
                )
                holds.append(hold)
            app.save(*holds)
            written += 1 + 2 * len(holds)
    finally:
        app.close()


def measure(events: int) -> tuple[int, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "pryv"
        data_dir.mkdir()
        started = time.perf_counter()
        synthesize(data_dir, events)
        written_s = time.perf_counter() - started
        empty = Path(tmp) / "stripe.csv"
        empty.write_text(CSV_HEADER)
        env = {**os.environ, "PRYV_DATA_DIR": str(data_dir), "PRYV_LOG_FORMAT": "text"}
        for name in ("PRYV_DATABASE_URL", "PRYV_REDIS_URL", "PRYV_NATS_URL"):
            env.pop(name, None)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        done = subprocess.run(
            [*RECONCILE, "--stripe-csv", str(empty)],
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if done.returncode not in (0, 1):
            raise SystemExit(f"reconcile failed: {done.stderr}")
        print(f"  (synthesized in {written_s:.1f} s)", flush=True)
        return max(peak, before), seconds, written_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    for size in args.sizes:
        peak_kb, seconds, _ = measure(size)
        print(f"reconcile over {size:,} events: peak RSS {peak_kb / 1024:,.0f} MB, {seconds:.1f} s")


if __name__ == "__main__":
    main()
