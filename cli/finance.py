"""`pryv finance reconcile`: the ledger's payments against Stripe's records, and every
account's projected balance against the plain sum of its postings."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bootstrap.platform import Platform
    from domain.reconciliation import Report
    from projections.store import ReadStore


async def build_report(platform: Platform, stripe_csv: Path | None) -> Report:
    from domain.reconciliation import AccountCheck, reconcile
    from infra.read_store_memory import MemoryReadStore
    from infra.stripe_billing import facts_from_balance_transactions, facts_from_csv
    from projections import balance
    from projections.finance import live_postings, payment_facts, rejected_payments, shortfalls
    from projections.replay import replay_log

    events = await asyncio.to_thread(platform.app.read_log, 0, 10_000_000)
    if stripe_csv is not None:
        stripe_facts = facts_from_csv(stripe_csv)
    elif platform.billing.configured:
        stripe_facts = facts_from_balance_transactions(
            await platform.billing.balance_transactions()
        )
    else:
        raise ValueError("give --stripe-csv, or configure PRYV_STRIPE_SECRET_KEY")
    store: ReadStore = platform.read_store
    if not platform.settings.redis_url:  # embedded: the projection, rebuilt from the log
        store = MemoryReadStore()
        await replay_log(platform.app.read_log, store)
    checks = []
    for account, postings in live_postings(events).items():
        projected = await balance.read_balance(store, account, "live")
        checks.append(AccountCheck(account, projected.balance_micros, postings))
    report = reconcile(payment_facts(events), stripe_facts, checks, rejected_payments(events))
    report.shortfalls = shortfalls(events)
    return report


def _usd(micros: int | None) -> str:
    from domain.money import micros_to_usd

    return "-" if micros is None else micros_to_usd(micros)


def render(report: Report) -> str:
    rows = [f"{'kind':<8} {'key':<32} {'ledger':>14} {'stripe':>14}  status"]
    for line in report.lines:
        rows.append(
            f"{line.kind.value:<8} {line.key:<32} {_usd(line.ledger_usd_micros):>14} "
            f"{_usd(line.stripe_usd_micros):>14}  {line.status.value}"
        )
    rows.append("")
    rows.append(f"{'account':<38} {'projected':>14} {'postings':>14}  status")
    for check in report.accounts:
        rows.append(
            f"{check.account_id:<38} {_usd(check.projected_micros):>14} "
            f"{_usd(check.postings_micros):>14}  {'ok' if check.ok else 'MISMATCH'}"
        )
    if report.shortfalls:
        rows.append("")
        rows.append("usage beyond its hold, not charged:")
        rows.append(f"{'account':<38} {'request':<40} {'charged':>14} {'shortfall':>14}")
        for short in report.shortfalls:
            rows.append(
                f"{short.account_id:<38} {short.request_id:<40} "
                f"{_usd(short.charged_micros):>14} {_usd(short.shortfall_micros):>14}"
            )
    if report.rejected_payments:
        rows.append("")
        rows.append("payments received but not credited (refund them):")
        for rejected in report.rejected_payments:
            rows.append(
                f"{rejected.source_id:<40} {rejected.amount_minor:>12} "
                f"{rejected.currency:<4} {rejected.reason}"
            )
    rows.append("")
    counts = report.counts()
    rows.append("summary: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    rows.append("CLEAN" if report.clean else "MISMATCHES FOUND")
    return "\n".join(rows)


def as_json(report: Report) -> str:
    return json.dumps(
        {
            "clean": report.clean,
            "counts": report.counts(),
            "lines": [
                {
                    "kind": ln.kind.value,
                    "key": ln.key,
                    "ledgerMicros": ln.ledger_usd_micros,
                    "stripeMicros": ln.stripe_usd_micros,
                    "status": ln.status.value,
                    "references": ln.references,
                }
                for ln in report.lines
            ],
            "accounts": [
                {
                    "accountId": a.account_id,
                    "projectedMicros": a.projected_micros,
                    "postingsMicros": a.postings_micros,
                    "ok": a.ok,
                }
                for a in report.accounts
            ],
            "shortfalls": [
                {
                    "accountId": x.account_id,
                    "requestId": x.request_id,
                    "model": x.model,
                    "chargedMicros": x.charged_micros,
                    "shortfallMicros": x.shortfall_micros,
                }
                for x in report.shortfalls
            ],
            "rejectedPayments": [
                {
                    "sourceId": x.source_id,
                    "currency": x.currency,
                    "amountMinor": x.amount_minor,
                    "reason": x.reason,
                }
                for x in report.rejected_payments
            ],
        },
        indent=2,
    )


def as_csv(report: Report, wallets: dict[str, str]) -> str:
    """One row per payment line and per account check, accounts named by their wallet."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["section", "kind", "key", "wallet", "ledger_usd", "stripe_usd", "status", "references"]
    )
    for ln in report.lines:
        writer.writerow(
            [
                "payment",
                ln.kind.value,
                ln.key,
                "",
                "" if ln.ledger_usd_micros is None else _usd(ln.ledger_usd_micros),
                "" if ln.stripe_usd_micros is None else _usd(ln.stripe_usd_micros),
                ln.status.value,
                ln.references,
            ]
        )
    for a in report.accounts:
        writer.writerow(
            [
                "account",
                "balance",
                a.account_id,
                wallets.get(a.account_id, ""),
                _usd(a.postings_micros),
                "",
                "ok" if a.ok else f"projected {_usd(a.projected_micros)}",
                "",
            ]
        )
    return out.getvalue().rstrip("\n")


def cmd_reconcile(args: argparse.Namespace) -> int:
    from bootstrap.platform import open_platform
    from domain import topics
    from infra.settings import Settings

    wallets: dict[str, str] = {}

    async def run() -> Report:
        platform = await open_platform(Settings.from_env(create=False))
        try:
            if args.format == "csv":
                for event in await asyncio.to_thread(platform.app.read_log, 0, 10_000_000):
                    if event.topic == topics.ACCOUNT_OPENED:
                        wallets[event.originator_id] = event.data["wallet"]
            return await build_report(platform, args.stripe_csv)
        finally:
            await platform.close()

    report = asyncio.run(run())
    if args.format == "csv":
        text = as_csv(report, wallets)
    else:
        text = as_json(report) if args.json or args.format == "json" else render(report)
    sys.stdout.write(text + "\n")
    return 0 if report.clean else 1


LEDGER_COLUMNS = (
    "created_at",
    "type",
    "env",
    "amount_usd",
    "usd_paid",
    "source",
    "source_id",
    "request_id",
    "key_id",
    "model",
    "tokens_in",
    "tokens_out",
    "position",
)


def cmd_ledger(args: argparse.Namespace) -> int:
    """`pryv finance ledger --wallet X [--month YYYY-MM] [--format csv|jsonl]`."""
    import csv
    import re

    from audit.export import account_uuid
    from audit.queries import account_ledger
    from bootstrap.platform import open_application
    from domain.money import micros_to_usd
    from infra.settings import Settings

    if args.month is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", args.month):
        raise ValueError(f"--month must be YYYY-MM, not {args.month!r}")
    account = str(account_uuid(args.wallet))
    app = open_application(Settings.from_env(create=False))
    try:
        entries = asyncio.run(account_ledger(app, account, args.month))
    finally:
        app.close()
    if args.format == "jsonl":
        for entry in entries:
            sys.stdout.write(json.dumps(entry, sort_keys=True) + "\n")
        return 0
    writer = csv.writer(sys.stdout)
    writer.writerow(LEDGER_COLUMNS)
    for e in entries:
        paid = e.get("usd_micros", e.get("paid_micros"))
        writer.writerow(
            [
                e.get("created_at"),
                e.get("type"),
                e.get("env"),
                micros_to_usd(int(str(e.get("amount_micros") or 0))),
                "" if paid is None else micros_to_usd(int(str(paid))),
                e.get("source", ""),
                e.get("source_id", ""),
                e.get("request_id", ""),
                e.get("key_id", ""),
                e.get("model", ""),
                e.get("tokens_in", ""),
                e.get("tokens_out", ""),
                e.get("position"),
            ]
        )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    finance = sub.add_parser("finance", help="finance tools").add_subparsers(
        dest="finance_command", required=True
    )
    rec = finance.add_parser(
        "reconcile",
        help="ledger vs Stripe: exit 0 clean, 1 mismatches, 2 usage, 3 could not run",
    )
    rec.add_argument(
        "--stripe-csv", type=Path, help="Stripe's itemized balance-change CSV export (offline)"
    )
    rec.add_argument("--json", action="store_true", help="the same as --format json")
    rec.add_argument("--format", choices=["text", "json", "csv"], default="text")
    rec.set_defaults(func=cmd_reconcile)
    led = finance.add_parser("ledger", help="one wallet's ledger, from the log (CSV or JSONL)")
    led.add_argument("--wallet", required=True, help="wallet address or account uuid")
    led.add_argument("--month", help="YYYY-MM (UTC); default: all")
    led.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    led.set_defaults(func=cmd_ledger)
