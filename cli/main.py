"""The `pryv` command: run the gateway and its workers, and operator tasks on keys and credits."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
import socket
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cli import audit, finance
from cli import projections as projections_cli
from domain.wallet_messages import WalletAction

# Each command imports what it uses when it runs: `pryv --help` (and a parse error) loads no
# web stack, no database driver, no eth-account, no PII engine (tests/unit/test_cli_imports.py).
if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from bootstrap.platform import Platform
    from commands.application import PryvApplication
    from infra.operator_key import OperatorSigner
    from infra.settings import Settings
    from privacy.pipeline import PrivacyFilter
    from projections.store import ReadStore


def _print(doc: object) -> None:
    print(json.dumps(doc, indent=2, default=str))


# --- long-running processes -----------------------------------------------------------------


def _served_urls(settings: Settings, args: argparse.Namespace) -> Settings:
    """Without PRYV_PUBLIC_URL / PRYV_DASHBOARD_URL / PRYV_MCP_PUBLIC_URL, the URLs this server
    is reached at: the MCP resource, the OAuth issuer, Stripe's return pages and their way back
    to the dashboard must name a real origin (the ports given, not the defaults)."""
    from infra.settings import read_environment

    configured = read_environment().model_fields_set

    def reachable(host: str) -> str:  # a wildcard bind is reached on loopback from here
        return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host

    if "public_url" not in configured:
        url = f"http://{reachable(args.host)}:{args.port}"
        settings = dataclasses.replace(settings, public_url=url)
    if args.dashboard_port and "dashboard_url" not in configured:  # Stripe's "back" link
        url = f"http://{reachable(args.dashboard_host or args.host)}:{args.dashboard_port}"
        settings = dataclasses.replace(settings, dashboard_url=url)
    if args.mcp_port and "mcp_public_url" not in configured:
        url = f"http://{reachable(args.mcp_host or args.host)}:{args.mcp_port}"
        settings = dataclasses.replace(settings, mcp_public_url=url)
    return settings


def _share_metrics_between_processes() -> None:
    """prometheus_client's multiprocess mode for the worker processes uvicorn spawns (they
    inherit the environment): PROMETHEUS_MULTIPROC_DIR if the operator set one, else a fresh
    temporary directory; emptied first, so a restart does not add the old samples in."""
    import tempfile

    from infra.metrics import prepare_multiprocess_dir
    from infra.settings import multiprocess_metrics_dir, share_multiprocess_metrics_dir

    chosen = multiprocess_metrics_dir() or tempfile.mkdtemp(prefix="pryv-metrics-")
    prepare_multiprocess_dir(Path(chosen))
    share_multiprocess_metrics_dir(chosen)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from infra.settings import Settings

    settings = _served_urls(Settings.from_env(), args)
    workers = settings.embedded if args.workers is None else args.workers
    if args.processes > 1:
        # N API processes share PostgreSQL, Redis and NATS; the in-memory embedded stores
        # cannot be shared, and relay/projector must not run once per process.
        if settings.embedded or workers:
            raise ValueError(
                "--processes needs PRYV_DATABASE_URL, PRYV_REDIS_URL and "
                "PRYV_NATS_URL, with --no-workers (run `pryv relay`/`pryv project`)"
            )
        _share_metrics_between_processes()
        uvicorn.run(
            "api.app:app_from_env",
            log_config=None,
            access_log=False,
            factory=True,
            workers=args.processes,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            loop="uvloop",
            # A worker imports FastAPI, the PII stack and the drivers before it can answer
            # the supervisor; on a loaded box that takes longer than uvicorn's 5 s default,
            # which then kills and restarts it forever.
            timeout_worker_healthcheck=120,
        )
        return 0
    if args.dashboard_port or args.mcp_port:
        import contextlib

        import uvloop

        # Like uvicorn.run: the servers stop gracefully on Ctrl-C, then the signal is re-raised.
        with contextlib.suppress(KeyboardInterrupt):
            uvloop.run(_serve_with_dashboard(settings, workers, args))
        return 0
    app = create_app(settings=settings, workers=workers)
    print(
        f"Starting Pryv: API at {settings.public_url}/v1 (reading the log and loading the PII "
        "models first: this takes a few seconds)",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        loop="uvloop",
        log_config=None,
        access_log=False,
    )
    return 0


async def _say_when_models_load(privacy: PrivacyFilter) -> None:
    """The PII models load in the background after start (seconds): say so, and when done."""
    import time

    started = time.monotonic()
    print("Loading the PII models (requests that need them wait)...", file=sys.stderr, flush=True)
    await privacy.engine()
    took = time.monotonic() - started
    print(f"PII models ready ({took:.0f} s).", file=sys.stderr, flush=True)


def announce(*, api: str, dashboard: str | None, mcp: str | None) -> None:
    """Where Pryv answers, in plain words on stderr whatever the log format (JSON log lines
    are for machines; a person starting `pryv serve` wants the URLs)."""
    lines = ["", "Pryv is running:", f"  API        {api}/v1"]
    if dashboard:
        lines.append(f"  Dashboard  {dashboard}/")
    if mcp:
        lines.append(f"  MCP        {mcp}")
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), file=sys.stderr, flush=True)


def _dashboard_socket(host: str, port: int) -> socket.socket | None:
    """The dashboard's listening socket, or None (with a warning) if the port is taken: several
    `pryv serve` processes on one host run one dashboard between them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        logging.getLogger("pryv.dashboard").warning(
            "dashboard not started on %s:%s (%s); the API serves without it", host, port, exc
        )
        return None
    return sock


async def _serve_with_dashboard(
    settings: Settings, workers: bool, args: argparse.Namespace
) -> None:
    """The API on --port and the dashboard on --dashboard-port, in one process and one event
    loop, over one Platform (the dashboard reads its projections and forwards signed actions to
    this very API app)."""
    from typing import Literal

    import uvicorn
    from fastapi import FastAPI

    from api.app import create_app
    from bootstrap.platform import open_platform
    from dashboard.app import create_dashboard
    from infra.settings import read_environment

    def config(
        app: FastAPI, host: str, port: int, lifespan: Literal["on", "off"]
    ) -> uvicorn.Config:
        return uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=args.log_level,
            log_config=None,
            access_log=False,
            lifespan=lifespan,
        )

    print(
        "Starting Pryv: reading the event log into the read models, then loading the PII "
        "models (a few seconds on a first start)...",
        file=sys.stderr,
        flush=True,
    )
    platform = await open_platform(settings)
    try:
        api_app = create_app(platform, workers=workers)
        # The dashboard's Docs show the public URL when one is configured, else this server's.
        configured = "public_url" in read_environment().model_fields_set
        api_url = settings.public_url if configured else f"http://{args.host}:{args.port}"
        api_server = uvicorn.Server(config(api_app, args.host, args.port, "on"))
        api_task = asyncio.create_task(api_server.serve())
        while not api_server.started and not api_task.done():  # read models caught up first
            await asyncio.sleep(0.05)
        if api_task.done():
            await api_task  # failed to start: raise its error
            return
        servers, tasks = [api_server], {api_task}
        if args.mcp_port:  # the same app (its MCP door) on the MCP origin's own port
            mcp_server = uvicorn.Server(
                config(api_app, args.mcp_host or args.host, args.mcp_port, "off")
            )
            servers.append(mcp_server)
            tasks.add(asyncio.create_task(mcp_server.serve()))
        sock = None
        if args.dashboard_port:  # None: another process has the dashboard port
            sock = _dashboard_socket(args.dashboard_host or args.host, args.dashboard_port)
        if sock is not None:
            dashboard = create_dashboard(platform, api_base_url=api_url, api_app=api_app)
            dashboard_server = uvicorn.Server(
                config(dashboard, args.dashboard_host or args.host, args.dashboard_port, "off")
            )
            servers.append(dashboard_server)
            tasks.add(asyncio.create_task(dashboard_server.serve(sockets=[sock])))
        announce(
            api=settings.public_url,
            dashboard=settings.dashboard_url if sock is not None else None,
            mcp=f"{settings.mcp_public_url or settings.public_url}/mcp",
        )
        loading = asyncio.create_task(_say_when_models_load(api_app.state.privacy))
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        loading.cancel()
        for server in servers:  # one stops: all stop
            server.should_exit = True
        await asyncio.gather(*tasks)
    finally:
        await platform.close()


async def _run_until_interrupted(role: str, args: argparse.Namespace) -> None:
    from bootstrap.platform import open_platform
    from infra.metrics import serve_metrics
    from infra.settings import Settings
    from workers import metrics
    from workers.projector import Projector
    from workers.relay import Relay
    from workers.sweeper import HoldSweeper

    platform = await open_platform(Settings.from_env(create=False))
    stop = asyncio.Event()

    def expose(registry: CollectorRegistry) -> None:
        if args.metrics_port:
            serve_metrics(registry, args.metrics_port, args.metrics_host)

    try:
        if role == "relay":
            relay = Relay(
                platform.app.read_log, platform.bus, page_size=platform.settings.relay_page_size
            )
            expose(metrics.relay_metrics(relay))
            await relay.run(stop)
        elif role == "sweeper":  # dead requests' holds, forced-closed channels, low balances
            from workers.alerts import LowBalanceNotifier
            from workers.channels import ChannelSettler

            sweeper = HoldSweeper(platform.app, platform.read_store)
            expose(metrics.sweeper_metrics(sweeper))
            notifier = LowBalanceNotifier(platform.read_store, platform.settings)
            await asyncio.gather(
                sweeper.run(stop), ChannelSettler(platform).run(stop), notifier.run(stop)
            )
        else:
            projector = Projector(platform.bus, platform.read_store)
            expose(metrics.projector_metrics(projector))
            await projector.run(stop)
    finally:
        await platform.close()


def _run_worker(role: str, args: argparse.Namespace) -> None:
    """On uvloop, like the API: the relay and projector are socket-bound loops (NATS, Redis),
    where uvloop's transports cost measurably less CPU per event (docs/benchmarks.md)."""
    import uvloop

    uvloop.run(_run_until_interrupted(role, args))


def cmd_relay(args: argparse.Namespace) -> int:
    _run_worker("relay", args)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    _run_worker("sweeper", args)
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    _run_worker("projector", args)
    return 0


# --- operator commands ----------------------------------------------------------------------


async def _read_store(platform: Platform) -> ReadStore:
    """Redis when configured; otherwise the embedded log replayed into memory (the log is truth)."""
    from infra.read_store_memory import MemoryReadStore
    from projections.replay import replay_log

    if platform.settings.redis_url:
        return platform.read_store
    store = MemoryReadStore()
    await replay_log(platform.app.read_log, store)
    return store


@dataclasses.dataclass(frozen=True)
class OperatorSession:
    settings: Settings
    signer: OperatorSigner
    app: PryvApplication


@contextlib.contextmanager
def operator_session() -> Iterator[OperatorSession]:
    """What an operator command writes with: the configured store (never a new one) and the
    operator key that signs each event it records; the store is closed after."""
    from bootstrap.platform import open_application
    from infra.operator_key import operator_signer
    from infra.settings import Settings

    settings = Settings.from_env(create=False)
    signer = operator_signer(settings)
    app = open_application(settings)
    try:
        yield OperatorSession(settings, signer, app)
    finally:
        app.close()


def cmd_keys_create(args: argparse.Namespace) -> int:
    from commands.key_terms import budget_micros, key_expiry
    from infra.wallet_signatures import normalize_address

    with operator_session() as session:
        created = session.app.create_key(
            wallet=normalize_address(args.wallet),
            name=args.name,
            env=args.env,
            models=[m for m in (args.models or "").split(",") if m],
            rpm=args.rpm,
            tpm=args.tpm,
            monthly_budget_micros=budget_micros(args.monthly_budget_usd or None),
            expires_at=key_expiry(None, args.expires_in_days or None),
            pepper=session.settings.key_pepper,
            authorization=session.signer,
        )
    _print(
        {
            "id": created.issued.key_id,
            "key": created.issued.token,
            "position": created.result.position,
            "operator": session.signer.address,
            "note": "the key is shown once; store it now",
        }
    )
    return 0


async def _wait_for_key_index(settings: Settings, position: int | None) -> bool:
    """Wait (30 s at most) until the shared key index has applied `position`, so a change
    made here already holds on every API instance; True at once without Redis (embedded
    servers rebuild their read models from the log)."""
    if position is None or not settings.redis_url:
        return True
    from commands.positions import wait_until_applied
    from infra.read_store_redis import RedisReadStore
    from projections import keys

    store = RedisReadStore.from_url(settings.redis_url, settings.redis_prefix)
    try:
        return await wait_until_applied(store, keys.NAME, position, 30.0)
    finally:
        await store.close()


def _limit(raw: str | None, parse: Callable[[str], object]) -> tuple[bool, object]:
    """(given, value) of an optional CLI limit: absent keeps it, `none` clears it."""
    if raw is None:
        return False, None
    return True, None if raw.lower() == "none" else parse(raw)


def cmd_keys_update(args: argparse.Namespace) -> int:
    """Change a key's terms as the operator (signed with the operator key)."""
    from commands.key_terms import budget_micros, key_expiry
    from infra.wallet_signatures import normalize_address

    changes: dict[str, object] = {}
    if args.name is not None:
        changes["name"] = args.name
    if args.models is not None:
        changes["models"] = [m for m in args.models.split(",") if m]
    parsers: dict[str, tuple[str | None, Callable[[str], object]]] = {
        "rpm": (args.rpm, int),
        "tpm": (args.tpm, int),
        "monthly_budget_micros": (args.monthly_budget_usd, budget_micros),
        "expires_at": (
            args.expires_at,
            lambda raw: key_expiry(datetime.fromisoformat(raw), None),
        ),
    }
    for name, (raw, parse) in parsers.items():
        given, value = _limit(raw, parse)
        if given:
            changes[name] = value
    if not changes:
        raise ValueError("nothing to change: give --name, --models, --rpm, --tpm, ...")
    with operator_session() as session:
        result = session.app.change_key_limits(
            wallet=normalize_address(args.wallet),
            key_id=args.key_id,
            changes=changes,
            authorization=session.signer,
        )
    applied = asyncio.run(_wait_for_key_index(session.settings, result.position))
    _print(
        {
            "id": args.key_id,
            "unchanged": result.duplicate,
            "position": result.position,
            "applied": applied,
            "operator": session.signer.address,
        }
    )
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """Roll a key's secret as the operator: the new token is printed once."""
    from infra.wallet_signatures import normalize_address

    if not 0 <= args.grace_seconds <= 7 * 24 * 3600:
        raise ValueError("--grace-seconds must be between 0 and 604800 (7 days)")
    previous_expires_at = datetime.now(UTC) + timedelta(seconds=args.grace_seconds)
    with operator_session() as session:
        rolled = session.app.roll_key(
            wallet=normalize_address(args.wallet),
            key_id=args.key_id,
            previous_expires_at=previous_expires_at,
            pepper=session.settings.key_pepper,
            authorization=session.signer,
        )
    applied = asyncio.run(_wait_for_key_index(session.settings, rolled.result.position))
    _print(
        {
            "id": args.key_id,
            "key": rolled.issued.token,
            "previousSecretExpiresAt": previous_expires_at.isoformat(),
            "position": rolled.result.position,
            "applied": applied,
            "operator": session.signer.address,
            "note": "the new key is shown once; store it now",
        }
    )
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from bootstrap.platform import open_platform
    from domain import ids
    from infra.settings import Settings
    from infra.wallet_signatures import normalize_address
    from projections import keys

    async def run() -> list[dict[str, object]]:
        platform = await open_platform(Settings.from_env(create=False))
        try:
            store = await _read_store(platform)
            account = str(ids.account_id(normalize_address(args.wallet)))
            rows = await keys.list_keys(store, account, limit=1000)
            return [
                {
                    "id": r.key_id,
                    "name": r.name,
                    "env": r.env,
                    "prefix": r.prefix,
                    "last4": r.last4,
                    "status": r.status,
                    "createdAt": r.created_at,
                }
                for _pos, r in rows
            ]
        finally:
            await platform.close()

    _print(asyncio.run(run()))
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from infra.wallet_signatures import normalize_address

    with operator_session() as session:
        result = session.app.revoke_key(
            wallet=normalize_address(args.wallet),
            key_id=args.key_id,
            reason=args.reason,
            authorization=session.signer,
        )
    if session.settings.redis_url:  # refused at once by every API instance, as a DELETE would
        asyncio.run(_mark_revoked(session.settings, args.key_id))
    _print(
        {
            "id": args.key_id,
            "status": "revoked",
            "alreadyRevoked": result.duplicate,
            "position": result.position,
            "operator": session.signer.address,
        }
    )
    return 0


async def _mark_revoked(settings: Settings, key_id: str) -> None:
    from infra.admission_redis import RedisAdmission
    from infra.read_store_redis import RedisReadStore

    assert settings.redis_url is not None
    store = RedisReadStore.from_url(settings.redis_url, settings.redis_prefix)
    try:
        await RedisAdmission(store).mark_revoked(key_id)
    finally:
        await store.close()


def cmd_credits_grant(args: argparse.Namespace) -> int:
    from domain.money import micros_to_usd, usd_to_micros
    from infra.wallet_signatures import normalize_address

    with operator_session() as session:
        result = session.app.grant_credits(
            wallet=normalize_address(args.wallet),
            env=args.env,
            amount_micros=usd_to_micros(args.usd),
            reason=args.reason,
            granted_by=args.granted_by,
            grant_ref=args.ref or f"cli-{uuid.uuid4()}",
            authorization=session.signer,
        )
    _print(
        {
            "granted": not result.duplicate,
            "duplicate": result.duplicate,
            "position": result.position,
            "usd": micros_to_usd(usd_to_micros(args.usd)),
            "operator": session.signer.address,
        }
    )
    return 0


def cmd_credits_balance(args: argparse.Namespace) -> int:
    from bootstrap.platform import open_platform
    from domain import ids
    from domain.money import micros_to_usd
    from infra.settings import Settings
    from infra.wallet_signatures import normalize_address
    from projections import balance

    async def run() -> dict[str, object]:
        platform = await open_platform(Settings.from_env(create=False))
        try:
            store = await _read_store(platform)
            account = str(ids.account_id(normalize_address(args.wallet)))
            out: dict[str, object] = {}
            for env in ("live", "test"):
                b = await balance.read_balance(store, account, env)
                out[env] = {
                    "balanceUsd": micros_to_usd(b.balance_micros),
                    "heldUsd": micros_to_usd(b.held_micros),
                    "availableUsd": micros_to_usd(b.available_micros),
                }
            return out
        finally:
            await platform.close()

    _print(asyncio.run(run()))
    return 0


def cmd_wallet_new(_args: argparse.Namespace) -> int:
    from infra.wallet_signatures import sign_message

    private_key = "0x" + secrets.token_hex(32)
    address, _sig = sign_message(private_key, "pryv")
    _print(
        {
            "address": address,
            "privateKey": private_key,
            "note": "a throwaway wallet for local testing; never fund it",
        }
    )
    return 0


def cmd_wallet_sign(args: argparse.Namespace) -> int:
    from domain.wallet_messages import format_wallet_message
    from infra.wallet_signatures import sign_message

    message = format_wallet_message(
        args.action, args.key_id, args.nonce or uuid.uuid4().hex, datetime.now(UTC)
    )
    address, signature = sign_message(args.private_key, message)
    fields = {"walletAddress": address, "message": message, "signature": signature}
    if args.headers:
        for name, value in (
            ("X-Wallet-Address", address),
            ("X-Wallet-Message", message),
            ("X-Wallet-Signature", signature),
        ):
            print(f"{name}: {value}")
    else:
        _print(fields)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pryv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API (embedded: with relay and projector)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--workers",
        dest="workers",
        action="store_true",
        default=None,
        help="run relay+projector in-process (default: only when embedded)",
    )
    serve.add_argument("--no-workers", dest="workers", action="store_false")
    serve.add_argument(
        "--processes", type=int, default=1, help="API processes (production backends only)"
    )
    serve.add_argument(
        "--dashboard-port",
        type=int,
        default=8001,
        help="also serve the dashboard on this port (0: none; single process only)",
    )
    serve.add_argument("--dashboard-host", default=None, help="default: --host")
    serve.add_argument(
        "--mcp-port",
        type=int,
        default=0,
        help="also serve the MCP server on this port (its origin: PRYV_MCP_PUBLIC_URL)",
    )
    serve.add_argument("--mcp-host", default=None, help="default: --host")
    serve.set_defaults(func=cmd_serve)
    relay = sub.add_parser("relay", help="publish the event log to NATS")
    relay.set_defaults(func=cmd_relay)
    sweep = sub.add_parser(
        "sweep",
        help="settle holds of requests that never settled, and MPP channels a payer forces closed",
    )
    sweep.set_defaults(func=cmd_sweep)
    project = sub.add_parser("project", help="apply bus events to the read models")
    project.set_defaults(func=cmd_project)
    for worker in (relay, sweep, project):
        audit.add_metrics_port(worker)

    keys_cmd = sub.add_parser("keys", help="operator key management").add_subparsers(
        dest="keys_command", required=True
    )
    create = keys_cmd.add_parser("create")
    create.add_argument("--wallet", required=True)
    create.add_argument("--name", default="Secret key")
    create.add_argument("--env", choices=["live", "test"], default="live")
    create.add_argument("--models", help="comma-separated model ids (default: all)")
    create.add_argument("--rpm", type=int)
    create.add_argument("--tpm", type=int)
    create.add_argument("--monthly-budget-usd")
    create.add_argument("--expires-in-days", type=int)
    create.set_defaults(func=cmd_keys_create)
    listing = keys_cmd.add_parser("list")
    listing.add_argument("--wallet", required=True)
    listing.set_defaults(func=cmd_keys_list)
    update = keys_cmd.add_parser("update", help="change a key's terms (`none` clears a limit)")
    update.add_argument("key_id")
    update.add_argument("--wallet", required=True)
    update.add_argument("--name")
    update.add_argument("--models", help="comma-separated model ids (empty: all)")
    update.add_argument("--rpm")
    update.add_argument("--tpm")
    update.add_argument("--monthly-budget-usd")
    update.add_argument("--expires-at", help="ISO-8601")
    update.set_defaults(func=cmd_keys_update)
    rotate = keys_cmd.add_parser("rotate", help="a new secret; the old one works for a grace")
    rotate.add_argument("key_id")
    rotate.add_argument("--wallet", required=True)
    rotate.add_argument("--grace-seconds", type=int, default=24 * 3600)
    rotate.set_defaults(func=cmd_keys_rotate)
    revoke = keys_cmd.add_parser("revoke")
    revoke.add_argument("key_id")
    revoke.add_argument("--wallet", required=True)
    revoke.add_argument("--reason", default="revoked by operator")
    revoke.set_defaults(func=cmd_keys_revoke)

    credits = sub.add_parser("credits", help="operator credits").add_subparsers(
        dest="credits_command", required=True
    )
    grant = credits.add_parser("grant")
    grant.add_argument("--wallet", required=True)
    grant.add_argument("--usd", required=True, help="amount, e.g. 10 or 2.50")
    grant.add_argument("--reason", required=True)
    grant.add_argument("--env", choices=["live", "test"], default="live")
    grant.add_argument("--ref", help="idempotency reference (same ref grants once)")
    grant.add_argument("--granted-by", default="operator")
    grant.set_defaults(func=cmd_credits_grant)
    bal = credits.add_parser("balance")
    bal.add_argument("--wallet", required=True)
    bal.set_defaults(func=cmd_credits_balance)

    finance.add_parser(sub)
    audit.add_parser(sub)
    projections_cli.add_parser(sub)

    wallet = sub.add_parser("wallet", help="local wallet helpers for testing").add_subparsers(
        dest="wallet_command", required=True
    )
    wallet.add_parser("new").set_defaults(func=cmd_wallet_new)
    sign = wallet.add_parser("sign", help="sign a management message (EIP-191)")
    sign.add_argument("--private-key", required=True)
    sign.add_argument("--action", required=True, choices=[a.value for a in WalletAction])
    sign.add_argument("--key-id", default="")
    sign.add_argument("--nonce")
    sign.add_argument("--headers", action="store_true", help="print as HTTP headers")
    sign.set_defaults(func=cmd_wallet_sign)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # --help and usage errors before any heavy import
    from commands.results import InvalidCommand, NotFound
    from domain.money import MoneyError
    from infra.log_format import configure_logging
    from infra.settings import ConfigurationError, read_environment

    try:
        environment = read_environment()
    except ConfigurationError as exc:
        print(f"pryv: {exc}", file=sys.stderr)
        return 2
    configure_logging(environment.log_format)  # JSON lines by default; text at a terminal
    return run_command(args, (InvalidCommand, NotFound, MoneyError))


def run_command(args: argparse.Namespace, usage_errors: tuple[type[Exception], ...]) -> int:
    """Run the parsed command. One line on stderr, never a traceback, for what an operator
    can fix: exit 2 for bad arguments or configuration, 3 when the command could not run (no
    store where it looked, a backing service unreachable)."""
    from domain.errors import ErrorKind, PryvError
    from infra.failures import backend_failures
    from infra.settings import ConfigurationError, StoreMissing

    usage: tuple[type[Exception], ...] = (*usage_errors, ValueError)
    try:
        code: int = args.func(args)
    except StoreMissing as exc:
        print(f"pryv: {exc}", file=sys.stderr)
        return 3
    except backend_failures() as exc:
        detail = " ".join(str(exc).split())  # drivers' messages span lines
        print(
            f"pryv: a backing service is unreachable: {type(exc).__name__}: {detail}",
            file=sys.stderr,
        )
        return 3
    except ConfigurationError as exc:
        print(f"pryv: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file named on the command line that cannot be read
        print(f"pryv: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except PryvError as exc:  # Stripe or another service could not answer: exit 3
        print(f"pryv: {exc.message}", file=sys.stderr)
        return 3 if exc.kind is ErrorKind.UNAVAILABLE else 2
    except usage as exc:
        print(f"pryv: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
