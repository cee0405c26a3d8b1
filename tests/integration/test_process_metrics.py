"""Metrics of a production deployment's processes: `pryv serve --processes 2` reports every
process's requests on every scrape (prometheus_client multiprocess mode), and the relay,
projector, sweeper and sealer each serve their own metrics on `--metrics-port`."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import httpx

from infra.settings import Settings
from tests.evidence import OPERATOR
from tests.integration.test_audit import ROOT, WALLETS, cli_env, delete_checkpoint_stream
from tests.integration.test_gateway_crash import free_port

STARTED = re.compile(r'^pryv_process_start_time_seconds\{pid="(\d+)"\}', re.M)
HEALTHZ = re.compile(r'^pryv_http_requests_total\{[^}]*route="/healthz"[^}]*\} (\S+)$', re.M)


@contextlib.contextmanager
def processes(settings: Settings, *commands: list[str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = cli_env(settings)
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "cli.main", *command],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for command in commands
    ]
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.terminate()
        for proc in started:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def scrape_until(url: str, pattern: str, procs: list[subprocess.Popen[bytes]]) -> str:
    """GET url until its body matches `pattern` (generous deadline: slow start-up)."""
    deadline = asyncio.get_running_loop().time() + 120
    async with httpx.AsyncClient() as http:
        while True:
            with contextlib.suppress(httpx.TransportError):
                response = await http.get(url)
                if response.status_code == 200 and re.search(pattern, response.text, re.M):
                    return response.text
            assert all(p.poll() is None for p in procs), "a process died"
            assert asyncio.get_running_loop().time() < deadline, f"{url} never showed {pattern}"
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def cleaned_checkpoint_stream(settings: Settings) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await delete_checkpoint_stream(settings)


async def test_every_api_process_counts_in_every_scrape(services_settings: Settings) -> None:
    from bootstrap.platform import open_platform

    (await open_platform(services_settings)).app.close()  # the schema exists before two start
    port = free_port()
    serve = ["serve", "--no-workers", "--processes", "2", "--port", str(port)]
    with processes(services_settings, [*serve, "--log-level", "warning"]) as procs:
        url = f"http://127.0.0.1:{port}"
        await scrape_until(f"{url}/healthz", "ok", procs)
        # New connections each time, so both processes answer some of them.
        for _ in range(40):
            async with httpx.AsyncClient() as fresh:
                assert (await fresh.get(f"{url}/healthz")).status_code == 200
        counts, pids = [], set()
        for _ in range(6):
            async with httpx.AsyncClient() as fresh:
                body = (await fresh.get(f"{url}/metrics")).text
            counts.append(sum(float(v) for v in HEALTHZ.findall(body)))
            pids |= set(STARTED.findall(body))
    assert len(pids) == 2, pids  # each scrape speaks for both processes
    # Every scrape, whichever process answered it, saw all 40 (and the start-up polls).
    assert min(counts) >= 41, counts
    assert len(set(counts)) == 1, counts  # no scrape saw only one process's share


async def test_each_worker_serves_its_own_metrics(services_settings: Settings) -> None:
    from bootstrap.platform import open_platform

    platform = await open_platform(services_settings)
    try:
        await asyncio.to_thread(
            platform.app.grant_credits,
            wallet=WALLETS[0],
            env="test",
            amount_micros=1,
            reason="metrics",
            granted_by="test",
            grant_ref="metrics-1",
            authorization=OPERATOR,
        )
    finally:
        await platform.close()
    ports = [free_port() for _ in range(4)]
    commands = [
        ["relay", "--metrics-port", str(ports[0])],
        ["project", "--metrics-port", str(ports[1])],
        ["sweep", "--metrics-port", str(ports[2])],
        ["audit", "seal", "--every-events", "1", "--metrics-port", str(ports[3])],
    ]
    async with cleaned_checkpoint_stream(services_settings):
        with processes(services_settings, *commands) as procs:
            base = "http://127.0.0.1:{}/metrics"
            await scrape_until(
                base.format(ports[0]), r"^pryv_relay_published_events_total [1-9]", procs
            )
            await scrape_until(
                base.format(ports[1]), r"^pryv_projector_applied_events_total [1-9]", procs
            )
            await scrape_until(base.format(ports[2]), r"^pryv_sweeper_expired_holds_total 0", procs)
            sealer = await scrape_until(
                base.format(ports[3]), r"^pryv_sealer_checkpoints_total [1-9]", procs
            )
            assert re.search(r"^pryv_sealer_refused_event 0", sealer, re.M)
