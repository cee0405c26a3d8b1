"""`pryv finance reconcile`: the ledger's payments against Stripe's records, and every
account's projected balance against the plain sum of its postings."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bootstrap.platform import Platform
    from domain.reconciliation import Report
    from projections.store import ReadStore


PAGE = 2000  # events per read: the fold keeps only what finance reports
STRIPE_SLACK = timedelta(days=2)  # Stripe's records are read this far around a period


@dataclass
class FinanceReport:
    """The reconciliation and the wallets its accounts belong to (for CSV)."""

    report: Report
    wallets: dict[str, str]


async def build_report(
    platform: Platform,
    stripe_csv: Path | None,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Report:
    return (await build_finance_report(platform, stripe_csv, start=start, end=end)).report


async def build_finance_report(
    platform: Platform,
    stripe_csv: Path | None,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> FinanceReport:
    """Ledger vs Stripe over [start, end): the log is paged through once (bounded memory), and
    Stripe's records are streamed too. Account balance checks are over the whole history
    (a balance is cumulative), whatever the period."""
    from domain.reconciliation import AccountCheck, PaymentFact, in_period, reconcile
    from infra.read_store_memory import MemoryReadStore
    from infra.stripe_billing import fact_from_balance_transaction, facts_from_csv
    from projections import balance
    from projections.finance import FinanceFold
    from projections.replay import replay_log

    fold = FinanceFold()
    after = 0
    while page := await asyncio.to_thread(platform.app.read_log, after, PAGE):
        for event in page:
            fold.feed(event)
        after = page[-1].position
    stripe_facts: list[PaymentFact] = []
    if stripe_csv is not None:
        since = start - STRIPE_SLACK if start else None
        until = end + STRIPE_SLACK if end else None
        stripe_facts = [f for f in facts_from_csv(stripe_csv) if in_period(f.at, since, until)]
    elif platform.billing.configured:
        async for row in platform.billing.balance_transactions(
            since=start - STRIPE_SLACK if start else None,
            until=end + STRIPE_SLACK if end else None,
        ):
            fact = fact_from_balance_transaction(row)
            if fact is not None:
                stripe_facts.append(fact)
    else:
        raise ValueError("give --stripe-csv, or configure PRYV_STRIPE_SECRET_KEY")
    store: ReadStore = platform.read_store
    if not platform.settings.redis_url:  # embedded: the balance projection, rebuilt from the log
        store = MemoryReadStore()
        await replay_log(platform.app.read_log, store, names=(balance.NAME,), page_size=PAGE)
    checks = []
    for account, postings in fold.postings.items():
        projected = await balance.read_balance(store, account, "live")
        checks.append(AccountCheck(account, projected.balance_micros, postings))
    report = reconcile(fold.payments, stripe_facts, checks, fold.rejected, start=start, end=end)
    report.shortfalls = fold.shortfalls
    return FinanceReport(report, fold.wallets)


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
    totals = report.stripe_totals()
    rows.append("")
    rows.append(
        "stripe: "
        + ", ".join(f"{name}={_usd(micros)}" for name, micros in totals.items() if micros)
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
            "stripeTotalsMicros": report.stripe_totals(),
            "lines": [
                {
                    "kind": ln.kind.value,
                    "key": ln.key,
                    "ledgerMicros": ln.ledger_usd_micros,
                    "stripeMicros": ln.stripe_usd_micros,
                    "status": ln.status.value,
                    "references": ln.references,
                    "at": ln.at.isoformat() if ln.at else None,
                    "currency": ln.currency,
                    "stripeFeeMicros": ln.stripe_fee_usd_micros,
                    "stripeNetMicros": ln.stripe_net_usd_micros,
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


CSV_COLUMNS = (
    "section",
    "kind",
    "key",
    "wallet",
    "at",
    "currency",
    "ledger_usd",
    "stripe_usd",
    "stripe_fee_usd",
    "stripe_net_usd",
    "status",
    "references",
)


def as_csv(report: Report, wallets: dict[str, str]) -> str:
    """One row per payment line and per account check, accounts named by their wallet."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for ln in report.lines:
        writer.writerow(
            [
                "payment",
                ln.kind.value,
                ln.key,
                "",
                ln.at.isoformat() if ln.at else "",
                ln.currency,
                "" if ln.ledger_usd_micros is None else _usd(ln.ledger_usd_micros),
                "" if ln.stripe_usd_micros is None else _usd(ln.stripe_usd_micros),
                _usd(ln.stripe_fee_usd_micros) if ln.stripe_usd_micros is not None else "",
                "" if ln.stripe_net_usd_micros is None else _usd(ln.stripe_net_usd_micros),
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
                "",
                "usd",
                _usd(a.postings_micros),
                "",
                "",
                "",
                "ok" if a.ok else f"projected {_usd(a.projected_micros)}",
                "",
            ]
        )
    for name, micros in report.stripe_totals().items():
        writer.writerow(["total", name, "", "", "", "usd", "", _usd(micros), "", "", "", ""])
    return out.getvalue().rstrip("\n")


def _moment(text: str | None, flag: str) -> datetime | None:
    """An ISO-8601 date or time; a bare date is midnight UTC, a time without zone is UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{flag} must be an ISO-8601 date or time, not {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cmd_reconcile(args: argparse.Namespace) -> int:
    from bootstrap.platform import open_platform
    from infra.settings import Settings

    start, end = _moment(args.start, "--from"), _moment(args.end, "--to")
    if start and end and start >= end:
        raise ValueError("--from must be before --to")

    async def run() -> FinanceReport:
        platform = await open_platform(Settings.from_env(create=False))
        try:
            return await build_finance_report(platform, args.stripe_csv, start=start, end=end)
        finally:
            await platform.close()

    result = asyncio.run(run())
    report = result.report
    if args.format == "csv":
        text = as_csv(report, result.wallets)
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
    rec.add_argument(
        "--from", dest="start", help="ISO-8601 date or time, inclusive (UTC unless given)"
    )
    rec.add_argument("--to", dest="end", help="ISO-8601 date or time, exclusive")
    rec.add_argument("--json", action="store_true", help="the same as --format json")
    rec.add_argument("--format", choices=["text", "json", "csv"], default="text")
    rec.set_defaults(func=cmd_reconcile)
    led = finance.add_parser("ledger", help="one wallet's ledger, from the log (CSV or JSONL)")
    led.add_argument("--wallet", required=True, help="wallet address or account uuid")
    led.add_argument("--month", help="YYYY-MM (UTC); default: all")
    led.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    led.set_defaults(func=cmd_ledger)
