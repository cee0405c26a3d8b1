"""`pryv projections rebuild|status`: rebuild read models with no downtime; see their lag."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bootstrap.platform import Platform
    from workers.rebuild import RebuildProgress


def _progress(progress: RebuildProgress) -> None:
    eta = progress.eta_seconds
    sys.stderr.write(
        f"\r[rebuild {','.join(progress.names)}] {progress.events:,} events "
        f"(log position {progress.position:,}/{progress.target:,}) "
        f"{progress.events_per_second:,.0f} ev/s ETA {'-' if eta is None else f'{eta:,.0f}s'}  "
    )
    sys.stderr.flush()


def _require_shared_store(platform: Platform) -> None:
    if not platform.settings.redis_url:
        raise ValueError(
            "the embedded read models live in the server's memory and are rebuilt from the log "
            "at every start; rebuild/status need PRYV_REDIS_URL"
        )


async def status_report(platform: Platform) -> dict[str, object]:
    from projections.catalog import PROJECTIONS

    log_end = await asyncio.to_thread(platform.app.max_position)
    generations = await platform.read_store.generations()
    projections = {}
    for name in PROJECTIONS:
        position = await platform.read_store.position(name)
        projections[name] = {
            "generation": generations.get(name, 0),
            "position": position.position,
            "busSeq": position.bus_seq,
            "lag": max(log_end - position.position, 0),
        }
    bus_end = await platform.bus.last_published_position()
    return {
        "logPosition": log_end,
        "relay": {"busPosition": bus_end, "lag": max(log_end - bus_end, 0)},
        "projections": projections,
    }


def cmd_status(args: argparse.Namespace) -> int:
    from bootstrap.platform import open_platform
    from infra.settings import Settings

    async def run() -> dict[str, object]:
        platform = await open_platform(Settings.from_env(create=False))
        try:
            _require_shared_store(platform)
            return await status_report(platform)
        finally:
            await platform.close()

    report = asyncio.run(run())
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"log position {report['logPosition']}")
    relay = report["relay"]
    assert isinstance(relay, dict)
    print(f"relay        bus position {relay['busPosition']}, lag {relay['lag']}")
    projections = report["projections"]
    assert isinstance(projections, dict)
    for name, row in projections.items():
        print(
            f"{name:<17} generation {row['generation']:<3} position {row['position']:<10} "
            f"lag {row['lag']}"
        )
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    from bootstrap.platform import open_platform
    from infra.settings import Settings
    from projections.catalog import PROJECTIONS
    from projections.store import RebuildLeaseLost
    from workers.rebuild import RebuildInProgress, rebuild

    unknown = sorted(set(args.names) - set(PROJECTIONS))
    if unknown:
        sys.stderr.write(
            f"pryv projections rebuild: unknown projections {', '.join(unknown)}; "
            f"choose from {', '.join(PROJECTIONS)}\n"
        )
        return 2

    async def run() -> dict[str, int]:
        platform = await open_platform(Settings.from_env(create=False))
        try:
            _require_shared_store(platform)
            return await rebuild(
                platform.app.read_log,
                platform.app.max_position,
                platform.read_store,
                args.names or tuple(PROJECTIONS),
                on_progress=_progress,
            )
        finally:
            await platform.close()

    try:
        generations = asyncio.run(run())
    except (RebuildInProgress, RebuildLeaseLost) as exc:
        sys.stderr.write(f"pryv projections rebuild: {exc.message}\n")
        return 1
    sys.stderr.write("\n")
    for name, generation in generations.items():
        print(f"{name}: now served from generation {generation}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from projections.catalog import PROJECTIONS

    projections = sub.add_parser("projections", help="read-model operations").add_subparsers(
        dest="projections_command", required=True
    )
    rebuild_cmd = projections.add_parser(
        "rebuild", help="replay the log into new read models, then swap them in atomically"
    )
    rebuild_cmd.add_argument(  # no `choices`: argparse checks [] against them (invalid choice)
        "names",
        nargs="*",
        help=f"projections (default: all of {', '.join(PROJECTIONS)})",
    )
    rebuild_cmd.set_defaults(func=cmd_rebuild)
    status = projections.add_parser("status", help="each projection's position and lag")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
