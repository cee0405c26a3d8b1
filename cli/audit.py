"""`pryv audit`: check the event log against its signed Merkle checkpoints, and export one
account's events with the proofs an outside auditor needs.

    pryv audit verify [--json] [--signer 0x…[,0x…]] [--operator 0x…[,0x…]]
                      exit 0 clean, 1 on the first problem found
    pryv audit export --account <wallet|uuid> [--from ISO] [--to ISO] [--format jsonl|csv]
                      [--output PATH]
    pryv audit seal [--once]                       run the sealer (see audit/sealer.py)
    pryv audit checkpoints [--json]                list the stored checkpoints

`verify` streams the raw log from the start and recomputes the RFC 6962 tree. For every stored
checkpoint it checks the signature (against the sealer address: --signer, PRYV_SEALER_ADDRESS,
PRYV_SEALER_KEY or <data_dir>/sealer_key; after key rotations, the addresses oldest first, and
a retired key may not sign after its successor did), the root at that size, the last
notification id and the resume state; every event's leaf against the checkpoint's leaf record
(which the signed root authenticates), so a changed, deleted or inserted event is named exactly;
that each aggregate's versions run 1..n; that every event still decodes; and that every money
and key event carries valid authorization evidence (audit/evidence.py: the wallet's signature,
an operator key's — --operator, PRYV_OPERATOR_ADDRESS, else the configured key —, a Stripe
event or an MPP payment; holds only on keys the log created). With NATS
configured it also checks that every checkpoint on the undeletable `<stream>_CHECKPOINTS` stream
is the stored one.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from audit.export import ExportResult
    from audit.sealer import Sealer
    from audit.verify import (
        VerifyReport,
    )
    from domain.merkle import Checkpoint
    from infra.settings import Settings


async def run_verify(
    settings: Settings,
    *,
    signer: str | None = None,
    operator: str | None = None,
    page_size: int | None = None,
    trusted_heads: Sequence[Checkpoint] = (),
    require_checkpoints: bool = True,
) -> VerifyReport:
    from audit.evidence import EvidenceAudit
    from audit.sealer import raw_reader
    from audit.verify import DEFAULT_PAGE_SIZE, event_decoder, published_checkpoints, verify_log
    from bootstrap.platform import open_application
    from infra.checkpoints import (
        open_checkpoint_store,
        parse_sealer_addresses,
        trusted_sealer_addresses,
    )
    from infra.operator_key import parse_operator_addresses, trusted_operator_addresses

    operators = (
        parse_operator_addresses(operator) if operator else trusted_operator_addresses(settings)
    )
    app = open_application(settings)
    store = await open_checkpoint_store(settings)
    try:
        trusted = parse_sealer_addresses(signer) if signer else trusted_sealer_addresses(settings)
        return await verify_log(
            raw_reader(app.recorder),
            store,
            trusted_signers=trusted,
            decode=event_decoder(app),
            page_size=DEFAULT_PAGE_SIZE if page_size is None else page_size,
            published=await published_checkpoints(settings),
            trusted_heads=trusted_heads,
            require_checkpoints=require_checkpoints,
            evidence=EvidenceAudit(operators=operators),
        )
    finally:
        await store.close()
        app.close()


def read_heads(path: Path) -> list[Checkpoint]:
    """The signed heads in a file an auditor saved: one checkpoint, a list, or a feed page."""
    from domain.merkle import Checkpoint

    try:
        doc = json.loads(path.read_text())
        items = doc["data"] if isinstance(doc, dict) and "data" in doc else doc
        return [Checkpoint.from_dict(i) for i in (items if isinstance(items, list) else [items])]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a saved checkpoint ({type(exc).__name__}: {exc})") from None


def cmd_verify(args: argparse.Namespace) -> int:
    from infra.settings import Settings, StoreMissing

    try:
        heads = [head for path in args.trusted_head or () for head in read_heads(path)]
        report = asyncio.run(
            run_verify(
                Settings.from_env(create=False),
                signer=args.signer,
                operator=args.operator,
                page_size=None if args.page_size is None else max(500, args.page_size),
                trusted_heads=heads,
                require_checkpoints=not args.allow_unsealed,
            )
        )
    except StoreMissing:
        raise  # exit 3 (cli.main.run_command): nothing was verified
    except ValueError as exc:  # a malformed --signer, --operator or their variables
        print(f"pryv audit verify: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.render())
    return 0 if report.ok else 1


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    with path.open("w", newline="" if path.suffix == ".csv" else None, encoding="utf-8") as f:
        yield f


def cmd_export(args: argparse.Namespace) -> int:
    from audit.export import account_uuid, export_account, export_log, parse_moment, write_export
    from bootstrap.platform import open_application
    from infra.checkpoints import open_checkpoint_store
    from infra.settings import Settings

    if args.all == (args.account is not None):
        raise ValueError("give --account <wallet or account id>, or --all")
    if args.all and (args.start or args.end):
        raise ValueError("--from/--to select one account's events: not with --all")
    settings = Settings.from_env(create=False)
    account = None if args.all else account_uuid(args.account)

    async def run(out: TextIO) -> ExportResult:
        app = open_application(settings)
        store = await open_checkpoint_store(settings)
        try:
            if account is None:  # streamed as it is read
                return await export_log(app, store, args.format, out)
            found = await export_account(
                app, store, account, start=parse_moment(args.start), end=parse_moment(args.end)
            )
            write_export(found.events, args.format, out)
            return found
        finally:
            await store.close()
            app.close()

    with _output(args.output) as out:
        result = asyncio.run(run(out))
    for warning in result.warnings:
        print(f"pryv audit export: warning: {warning}", file=sys.stderr)
    what = "the whole log" if account is None else f"account {account}"
    count = result.log_size if account is None else len(result.events)
    proofs = (
        f" (proofs against checkpoint {result.checkpoint.tree_size})" if result.checkpoint else ""
    )
    print(f"pryv audit export: {count} events of {what}{proofs}", file=sys.stderr)
    return 0 if result.log_matches_checkpoint else 1


# --- seal / checkpoints ----------------------------------------------------------------------


async def run_sealer(
    settings: Settings,
    *,
    once: bool,
    every_events: int,
    every_seconds: float,
    stop: asyncio.Event | None = None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> Sealer:
    from audit.sealer import opened_sealer
    from bootstrap.platform import open_application
    from infra.metrics import serve_metrics
    from workers.metrics import sealer_metrics

    app = open_application(settings)
    try:
        async with opened_sealer(
            app, settings, every_events=every_events, every_seconds=every_seconds
        ) as sealer:
            if metrics_port:
                serve_metrics(sealer_metrics(sealer), metrics_port, metrics_host)
            if once:
                await sealer.seal_pending(force=True)
            else:
                stop = stop or asyncio.Event()
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(signum, stop.set)  # seal what is pending, then exit
                await sealer.run(stop)
            return sealer
    finally:
        app.close()


def add_metrics_port(parser: argparse.ArgumentParser) -> None:
    """`--metrics-port N`: serve this worker's own Prometheus metrics on http://host:N/."""
    parser.add_argument("--metrics-port", type=int, help="serve this process's metrics here")
    parser.add_argument("--metrics-host", default="127.0.0.1")


def cmd_seal(args: argparse.Namespace) -> int:
    from infra.settings import Settings

    sealer = asyncio.run(
        run_sealer(
            Settings.from_env(create=False),
            once=args.once,
            every_events=args.every_events,
            every_seconds=args.every_seconds,
            metrics_port=args.metrics_port,
            metrics_host=args.metrics_host,
        )
    )
    print(
        json.dumps(
            {
                "treeSize": sealer.tree_size,
                "lastNotificationId": sealer.position,
                "checkpointsWritten": sealer.checkpoints_written,
                "eventsHashed": sealer.sealed_events,
            }
        )
    )
    return 0


def cmd_checkpoints(args: argparse.Namespace) -> int:
    from infra.checkpoints import open_checkpoint_store, trusted_sealer_addresses
    from infra.settings import Settings

    settings = Settings.from_env(create=False)

    async def run() -> list[Checkpoint]:
        store = await open_checkpoint_store(settings)
        try:
            out: list[Checkpoint] = []
            after = 0
            while page := await store.page(after, 500, with_leaves=False):
                out += [r.checkpoint for r in page]
                after = page[-1].tree_size
            return out
        finally:
            await store.close()

    checkpoints = asyncio.run(run())
    sealers = trusted_sealer_addresses(settings)
    sealer = sealers[-1] if sealers else None
    if args.json:
        doc = {
            "sealer": sealer,
            "sealers": list(sealers),
            "checkpoints": [c.to_dict() for c in checkpoints],
        }
        print(json.dumps(doc, indent=2))
        return 0
    buffer = io.StringIO()
    buffer.write(f"sealer address: {sealer or 'unknown (no key or address configured)'}\n")
    if len(sealers) > 1:
        buffer.write(f"earlier sealer keys: {', '.join(sealers[:-1])}\n")
    for c in checkpoints:
        buffer.write(
            f"{c.tree_size:>12,}  {c.root_hex}  nid {c.last_notification_id}  {c.created_at}\n"
        )
    sys.stdout.write(buffer.getvalue())
    return 0


def cmd_balance(args: argparse.Namespace) -> int:
    """`pryv audit balance --wallet X --at T`: the balance the log implies at that moment."""
    from audit.export import account_uuid, parse_moment
    from audit.queries import balance_at
    from bootstrap.platform import open_application
    from domain.money import micros_to_usd
    from infra.settings import Settings

    at = parse_moment(args.at)
    assert at is not None
    account = str(account_uuid(args.wallet))
    app = open_application(Settings.from_env(create=False))
    try:
        result = asyncio.run(balance_at(app, account, args.env, at))
    finally:
        app.close()
    print(
        json.dumps(
            {
                "account": account,
                "env": args.env,
                "at": at.isoformat(),
                "creditedUsd": micros_to_usd(result.credited_micros),
                "debitedUsd": micros_to_usd(result.debited_micros),
                "heldUsd": micros_to_usd(result.held_micros),
                "balanceUsd": micros_to_usd(result.balance_micros),
                "balanceMicros": result.balance_micros,
            },
            indent=2,
        )
    )
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    """`pryv audit events --key K`: every event of a key and its requests, as JSON lines."""
    from audit.queries import key_events
    from bootstrap.platform import open_application
    from domain.api_keys import is_valid_key_id
    from infra.settings import Settings

    if not is_valid_key_id(args.key):
        raise ValueError(f"{args.key!r} is not a key id (the 16 characters after pryv_<env>_)")
    app = open_application(Settings.from_env(create=False))

    async def stream() -> int:
        count = 0
        async for event in key_events(app, args.key):
            sys.stdout.write(event.to_json().decode() + "\n")
            count += 1
        return count

    try:
        asyncio.run(stream())
    finally:
        app.close()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser("audit", help="tamper-evident log: verify, export, seal").add_subparsers(
        dest="audit_command", required=True
    )
    verify = audit.add_parser(
        "verify", help="recompute the Merkle tree and check every checkpoint; exit 1 on a problem"
    )
    verify.add_argument("--json", action="store_true")
    verify.add_argument(
        "--signer",
        help="the sealer's 0x address, or after key rotations its addresses oldest first, "
        "comma-separated (default: from configuration)",
    )
    verify.add_argument(
        "--operator",
        help="the operator keys' 0x addresses, comma-separated, that may sign grants and CLI "
        "key actions (default: PRYV_OPERATOR_ADDRESS, else the configured operator key)",
    )
    verify.add_argument(
        "--page-size", type=int, default=None, help="events per page read (default 2000, min 500)"
    )
    verify.add_argument(
        "--allow-unsealed",
        action="store_true",
        help="a log with no checkpoint yet is not a failure (a deployment that never sealed)",
    )
    verify.add_argument(
        "--trusted-head",
        action="append",
        type=Path,
        metavar="FILE",
        help="a signed head saved earlier (a checkpoint, a list of them, or a page of "
        "GET /v1/audit/checkpoints): the log must still extend it; repeatable",
    )
    verify.set_defaults(func=cmd_verify)

    export = audit.add_parser(
        "export", help="one account's events (or --all) with leaf hashes and proofs"
    )
    export.add_argument("--account", help="wallet address or account uuid")
    export.add_argument(
        "--all", action="store_true", help="every event of the log, streamed, with proofs"
    )
    export.add_argument("--from", dest="start", help="ISO-8601, inclusive")
    export.add_argument("--to", dest="end", help="ISO-8601, exclusive")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("--output", type=Path, help="file to write (default: stdout)")
    export.set_defaults(func=cmd_export)

    at = audit.add_parser("balance", help="an account's balance at a moment, from the log")
    at.add_argument("--wallet", required=True, help="wallet address or account uuid")
    at.add_argument("--at", required=True, help="ISO-8601 moment")
    at.add_argument("--env", choices=["live", "test"], default="live")
    at.set_defaults(func=cmd_balance)
    events = audit.add_parser("events", help="every event of one key and its requests (JSONL)")
    events.add_argument("--key", required=True, help="the key id")
    events.set_defaults(func=cmd_events)

    seal = audit.add_parser("seal", help="run the sealer (signed checkpoints of the log)")
    seal.add_argument("--once", action="store_true", help="seal everything now and exit")
    seal.add_argument("--every-events", type=int, default=1000)
    seal.add_argument("--every-seconds", type=float, default=10.0)
    add_metrics_port(seal)
    seal.set_defaults(func=cmd_seal)

    listing = audit.add_parser("checkpoints", help="list stored checkpoints and the sealer address")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_checkpoints)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m cli.audit …` (the same commands as `pryv audit …`)."""
    parser = argparse.ArgumentParser(prog="pryv")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["audit", *(sys.argv[1:] if argv is None else argv)])
    from cli.main import run_command

    return run_command(args, ())


if __name__ == "__main__":
    raise SystemExit(main())
