"""Chaos: kill -9 every moving part under load; the money invariants still hold over the log.

About 200 concurrent requests (JSON and SSE, spread over two API processes) run continuously
while, one after another, an API process, the relay, the projector, NATS and Redis are killed
with SIGKILL and restarted. Requests may fail meanwhile (connection errors, 401/402/503: fail
closed), but never with a 500. Once the load stops and every hold has expired, the event log
must show: one settlement per hold, projected balances equal to the sum of postings, no
overspend, and read models equal to a replay of the log.

The test runs its OWN Redis (no persistence: a restart loses every read model) and NATS
(JetStream file storage under tmp_path, which survives a restart) on free loopback ports, so
it can kill them without touching the machine's shared services. PostgreSQL is the shared one,
in a fresh schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bootstrap.platform import Platform, open_platform
from commands.metering import AdmissionRefused, KeyIdentity
from domain import ids, topics
from domain.api_keys import parse_api_key
from domain.envelope import EventEnvelope
from domain.pricing import Usage
from infra.event_store import postgres_env
from infra.read_store_memory import MemoryReadStore
from infra.read_store_redis import RedisReadStore
from infra.settings import Settings
from projections import balance, finance, keys
from projections.catalog import PROJECTIONS
from projections.replay import replay_log
from tests.conftest import POSTGRES_URL, REQUIRE_SERVICES, require_service, unique_name
from tests.fakes.upstream import FakeUpstream, running_fake_upstream
from tests.gateway_harness import Gateway, write_catalog
from tests.integration.test_gateway_crash import free_port
from tests.integration.test_relay_crash import relay_env
from workers.embedded import running_workers
from workers.projector import Projector
from workers.relay import Relay

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
CONCURRENCY = 200
HOLD_TTL_SECONDS = 5
STEADY_SECONDS = 3.0  # load between two chaos steps, once the previous one has recovered
DOWN_SECONDS = 1.5  # how long a killed component stays dead before its restart
START_TIMEOUT = 120.0  # a Python process starting on a loaded 2-core machine
RECOVERY_TIMEOUT = 90.0
QUIESCENCE_TIMEOUT = 120.0
PROMPT = " ".join(f"word{i}" for i in range(40))
ALLOWED_STATUSES = {200, 401, 402, 503}  # fail closed; anything else is reported as a failure


def binary(name: str, fallback: str) -> str:
    found = shutil.which(name) or (fallback if os.access(fallback, os.X_OK) else None)
    if found is None:
        message = f"{name} not found (apt-get install {name.split('-')[0]}-server)"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    return found


# --- processes ----------------------------------------------------------------------------

_LIBC = ctypes.CDLL(None) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """In the child: SIGKILL me if the test process dies (no orphaned servers on ports)."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class Proc:
    """A subprocess the test may SIGKILL and restart; its output goes to a log under tmp_path."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] | None = None
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as handle:
            handle.write(f"--- start #{self.starts} at {time.time():.3f} ---\n".encode())
            handle.flush()
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL by pid (only ever this process), then reap it."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def count(self, text: str) -> int:
        return self.log.read_text(errors="replace").count(text) if self.log.exists() else 0

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return "(no output)"
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


@dataclass
class Cluster:
    procs: dict[str, Proc] = field(default_factory=dict)

    def add(self, proc: Proc) -> Proc:
        self.procs[proc.name] = proc
        return proc

    def assert_alive(self, *, except_: str | None = None) -> None:
        for name, proc in self.procs.items():
            if name != except_ and not proc.alive:
                code = proc.popen.returncode if proc.popen else None
                raise AssertionError(f"{name} exited on its own (code {code}):\n{proc.tail()}")

    def print_tails(self) -> None:
        for name, proc in self.procs.items():
            print(f"\n===== {name} ({proc.log}) =====\n{proc.tail(60)}")

    def kill_all(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(Exception):
                proc.kill()


def _redis_pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


async def wait_redis(proc: Proc, port: int) -> None:
    deadline = time.monotonic() + 30
    while not _redis_pong(port):
        assert proc.alive, f"redis-server died at start:\n{proc.tail()}"
        assert time.monotonic() < deadline, f"redis-server not answering:\n{proc.tail()}"
        await asyncio.sleep(0.05)


async def wait_nats(proc: Proc, url: str) -> None:
    """Until JetStream answers (after a restart it first recovers its file store)."""
    import nats

    deadline = time.monotonic() + 60
    while True:
        assert proc.alive, f"nats-server died at start:\n{proc.tail()}"
        try:
            nc = await nats.connect(url, connect_timeout=1, max_reconnect_attempts=0)
            try:
                await nc.jetstream().account_info()
                return
            finally:
                await nc.close()
        except Exception:
            assert time.monotonic() < deadline, f"NATS JetStream not answering:\n{proc.tail()}"
            await asyncio.sleep(0.1)


async def wait_http(proc: Proc, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            assert proc.alive, f"{proc.name} died at start:\n{proc.tail()}"
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return
            assert time.monotonic() < deadline, f"{proc.name} never answered:\n{proc.tail()}"
            await asyncio.sleep(0.1)


# --- load ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadKey:
    token: str
    env: str
    account: str  # label, for the report
    weight: float


@dataclass
class Tally:
    phase: str = "start"
    by_status: Counter[str] = field(default_factory=Counter)
    by_phase: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    last_ok: dict[str, float] = field(default_factory=dict)  # API url -> monotonic time
    samples: dict[str, str] = field(default_factory=dict)  # status -> one response body
    timeline: list[tuple[float, str]] = field(default_factory=list)  # (wall clock, phase)

    def enter(self, phase: str) -> None:
        self.phase = phase
        self.timeline.append((time.time(), phase))

    def phase_at(self, wall_clock: float) -> str:
        current = "start"
        for started, phase in self.timeline:
            if started <= wall_clock:
                current = phase
        return current

    def record(self, url: str, status: str, body: str = "") -> None:
        self.by_status[status] += 1
        self.by_phase[self.phase][status] += 1
        if status == "200":
            self.last_ok[url] = time.monotonic()
        self.samples.setdefault(status, body[:300])


async def one_request(
    http: httpx.AsyncClient, url: str, key: LoadKey, rng: random.Random
) -> tuple[str, str]:
    """One chat completion; returns (outcome, a body sample). Outcomes are the HTTP status, or
    for streams that started: `200`, `200-aborted` (we hung up on purpose) or `200-broken`."""
    if key.env == "live":
        model = "fake-live"
    else:
        model = rng.choices(["pryv-echo", "echo-slow", "fake-nousage"], [5, 4, 1])[0]
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": rng.choice([8, 16, 24]),
    }
    if rng.random() < 0.9:  # mostly skip PII redaction: keep the CPU for the money path
        body["privacy_mode"] = "off"
    headers = {"Authorization": f"Bearer {key.token}"}
    if rng.random() < 0.45:
        response = await http.post(f"{url}/v1/chat/completions", headers=headers, json=body)
        return str(response.status_code), response.text
    body["stream"] = True
    if rng.random() < 0.5:
        body["stream_options"] = {"include_usage": True}
    abort_after = rng.choice([2, 5]) if rng.random() < 0.1 else None
    async with http.stream(
        "POST", f"{url}/v1/chat/completions", headers=headers, json=body
    ) as response:
        if response.status_code != 200:
            return str(response.status_code), (await response.aread()).decode(errors="replace")
        lines = 0
        done = False
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            if '"error"' in line and not done:
                return "200-sse-error", line
            if line == "data: [DONE]":
                done = True
            lines += 1
            if abort_after is not None and lines >= abort_after and not done:
                return "200-aborted", ""
        return ("200" if done else "200-broken"), ""


async def load_worker(
    n: int,
    http: httpx.AsyncClient,
    urls: list[str],
    keys: list[LoadKey],
    stop: asyncio.Event,
    tally: Tally,
) -> None:
    rng = random.Random(n)
    weights = [k.weight for k in keys]
    while not stop.is_set():
        url = urls[n % len(urls)] if rng.random() < 0.75 else rng.choice(urls)
        key = rng.choices(keys, weights)[0]
        try:
            status, sample = await one_request(http, url, key, rng)
        except httpx.HTTPError as exc:  # connection refused/reset, timeouts: a killed process
            status, sample = type(exc).__name__, str(exc)
        tally.record(url, status, sample)
        if status != "200":  # do not spin on a dead port or an empty balance
            await asyncio.sleep(0.02 + rng.random() * 0.08)


@contextlib.asynccontextmanager
async def running_load(urls: list[str], keys: list[LoadKey], tally: Tally) -> AsyncIterator[None]:
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=CONCURRENCY + 10, max_keepalive_connections=CONCURRENCY)
    timeout = httpx.Timeout(30.0, connect=5.0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        tasks = [
            asyncio.create_task(load_worker(n, http, urls, keys, stop, tally))
            for n in range(CONCURRENCY)
        ]
        try:
            yield
        finally:
            stop.set()
            done, pending = await asyncio.wait(tasks, timeout=60)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]


# --- the event log ------------------------------------------------------------------------


class LogFollower:
    """Reads the log incrementally (pages after the last position seen) to track open holds."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self.position = 0
        self.placed: set[str] = set()
        self.settled: Counter[str] = Counter()

    async def poll(self) -> None:
        while True:
            page = await asyncio.to_thread(self._platform.app.read_log, self.position, 2000)
            if not page:
                return
            for event in page:
                if event.topic == topics.HOLD_PLACED:
                    self.placed.add(event.originator_id)
                elif event.topic == topics.HOLD_SETTLED:
                    self.settled[event.originator_id] += 1
            self.position = page[-1].position

    @property
    def open_holds(self) -> set[str]:
        return self.placed - set(self.settled)


async def read_whole_log(platform: Platform) -> list[EventEnvelope]:
    events: list[EventEnvelope] = []
    after = 0
    while True:
        page = await asyncio.to_thread(platform.app.read_log, after, 5000)
        if not page:
            return events
        events += page
        after = page[-1].position


def overdrafts(log: list[EventEnvelope], account: str, env: str) -> list[tuple[str, int, int]]:
    """Walk the log in order: where the account's credit minus settled minus open holds went
    below zero, i.e. a hold was placed that the balance did not cover (with its time)."""
    credited = debited = held = 0
    open_holds: dict[str, int] = {}
    found: list[tuple[str, int, int]] = []
    for event in log:
        data = event.data
        if data.get("account_id") != account or data.get("env", "live") != env:
            continue
        if event.topic in (topics.GRANT_GRANTED, topics.PURCHASE_COMPLETED):
            credited += data.get("amount_micros", data.get("credits_micros", 0))
        elif event.topic == topics.HOLD_PLACED:
            open_holds[event.originator_id] = data["amount_micros"]
            held += data["amount_micros"]
            if credited - debited - held < 0:
                found.append((event.timestamp, event.position, credited - debited - held))
        elif event.topic == topics.HOLD_SETTLED:
            held -= open_holds.pop(event.originator_id, 0)
            debited += data["actual_micros"]
    return found


def postings(log: list[EventEnvelope]) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """(credited, settled usage) per (account, env), summed straight from the events."""
    credited: Counter[tuple[str, str]] = Counter()
    spent: Counter[tuple[str, str]] = Counter()
    for event in log:
        data = event.data
        if event.topic == topics.GRANT_GRANTED:
            credited[(data["account_id"], data["env"])] += data["amount_micros"]
        elif event.topic == topics.PURCHASE_COMPLETED:
            credited[(data["account_id"], "live")] += data["credits_micros"]
        elif event.topic == topics.HOLD_SETTLED:
            spent[(data["account_id"], data["env"])] += data["actual_micros"]
    return credited, spent


def request_violations(tally: Tally) -> list[str]:
    """Fail closed, never a 500: only 200/401/402/503 or a broken connection."""
    problems = []
    statuses = tally.by_status
    if statuses["500"]:
        problems.append(f"{statuses['500']} answers were 500: {tally.samples['500']}")
    for status, count in statuses.items():
        if status.isdigit() and status != "500" and int(status) not in ALLOWED_STATUSES:
            problems.append(f"{count} answers were {status}: {tally.samples[status]}")
    if statuses["200-sse-error"]:
        problems.append(f"streams ended in an error event: {tally.samples['200-sse-error']}")
    if not statuses["200"] or not statuses["402"]:
        problems.append(f"the load needs both 200s and 402s to mean anything: {dict(statuses)}")
    return problems


def money_violations(
    log: list[EventEnvelope],
    projected: dict[tuple[str, str], balance.Balance],
    served: dict[str, Any],
    rebuilt: dict[str, Any],
    upstream_calls: Counter[str],
    tally: Tally,
) -> list[str]:
    """The four invariants of docs/architecture.md ("Invariants"), checked over the event log;
    one line per violation."""
    problems = []
    placed = {e.originator_id: e for e in log if e.topic == topics.HOLD_PLACED}
    settlements = Counter(e.originator_id for e in log if e.topic == topics.HOLD_SETTLED)
    # 1. every hold has exactly one settlement
    if unsettled := set(placed) - set(settlements):
        problems.append(f"{len(unsettled)} holds never settled: {sorted(unsettled)[:5]}")
    if orphans := set(settlements) - set(placed):
        problems.append(f"{len(orphans)} settlements without a hold: {sorted(orphans)[:5]}")
    if twice := {h: n for h, n in settlements.items() if n > 1}:
        problems.append(f"{len(twice)} holds settled more than once: {list(twice.items())[:5]}")

    # 2. projected balance == the plain sum of postings (every account and env), nothing held
    credited, spent = postings(log)
    live = finance.live_postings(log)
    for account, got in projected.items():
        want = credited[account] - spent[account]
        if got.balance_micros != want or got.held_micros != 0:
            problems.append(f"{account}: projected {got}, postings sum to {want}")
        if account[1] == "live" and live.get(account[0], 0) != want:
            problems.append(f"{account}: finance.live_postings says {live.get(account[0])}")

    # 3. no overspend: what was settled never exceeds what was credited
    for account in projected:
        if spent[account] > credited[account]:
            holes = overdrafts(log, *account)
            phases = Counter(
                tally.phase_at(datetime.fromisoformat(h[0]).timestamp()) for h in holes
            )
            problems.append(
                f"overspend on {account}: spent {spent[account]} > credited {credited[account]}; "
                f"{len(holes)} holds were placed beyond the balance, during {dict(phases)} "
                f"(timestamp, log position, available after the hold): {holes[:5]}"
            )
    # ... and nothing reached an upstream without a durable hold
    models = Counter(e.data["model"] for e in placed.values())
    for upstream_model, model in (("normal", "fake-live"), ("nousage", "fake-nousage")):
        if upstream_calls[upstream_model] > models[model]:
            problems.append(
                f"{upstream_calls[upstream_model]} calls reached the upstream for {model}, "
                f"only {models[model]} holds were placed"
            )

    # 4. read models == a replay of the log from zero
    differing = sorted(k for k in set(served) | set(rebuilt) if served.get(k) != rebuilt.get(k))
    if differing:
        problems.append(
            f"{len(differing)} read-model keys differ from a replay: "
            + "; ".join(f"{k}: {served.get(k)} != {rebuilt.get(k)}" for k in differing[:10])
        )
    return problems


async def min_position(store: RedisReadStore) -> int | None:
    """The lowest applied log position over every projection; None if Redis does not answer."""
    try:
        return min([(await store.position(name)).position for name in PROJECTIONS])
    except Exception:
        return None


# --- the test -----------------------------------------------------------------------------


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """The test's processes; killed in teardown too, which runs even after a timeout."""
    processes = Cluster()
    yield processes
    processes.kill_all()


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with running_fake_upstream() as fake:
        yield fake


def small_postgres_pools(monkeypatch: pytest.MonkeyPatch, schema: str) -> None:
    """Every process here (this one and the six it starts) would otherwise open 10 PostgreSQL
    connections at once (eventsourcing's pool min_size = POSTGRES_POOL_SIZE = 10): next to other
    test runs on a shared server that exceeds max_connections=100 ("too many clients"). With
    PERSISTENCE_MODULE set, infra/event_store.py leaves the settings to the environment."""
    for name, value in {
        **postgres_env(POSTGRES_URL, schema),
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_MAX_OVERFLOW": "8",
    }.items():
        monkeypatch.setenv(name, value)


async def test_chaos_kill9_every_component_under_load_keeps_the_money_invariants(
    postgres_schema: str,
    upstream: FakeUpstream,
    cluster: Cluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    small_postgres_pools(monkeypatch, postgres_schema)
    redis_bin = binary("redis-server", "/usr/bin/redis-server")
    nats_bin = binary("nats-server", "/usr/sbin/nats-server")
    timings: dict[str, float] = {}
    began = time.monotonic()

    redis_port, nats_port = free_port(), free_port()
    (tmp_path / "redis").mkdir()
    (tmp_path / "nats").mkdir()
    redis_proc = cluster.add(
        Proc(
            "redis",
            [
                redis_bin,
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp_path / "redis"),
            ],
            tmp_path / "redis.log",
        )
    )
    nats_proc = cluster.add(
        Proc(
            "nats",
            [
                nats_bin,
                "-a",
                "127.0.0.1",
                "-p",
                str(nats_port),
                "-js",
                "-sd",
                str(tmp_path / "nats"),
            ],
            tmp_path / "nats.log",
        )
    )
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    nats_url = f"nats://127.0.0.1:{nats_port}"
    catalog = write_catalog(tmp_path, upstream)
    settings = Settings(
        data_dir=tmp_path / "pryv",
        database_url=POSTGRES_URL,
        database_schema=postgres_schema,
        redis_url=redis_url,
        redis_prefix=unique_name("pryvchaos"),
        nats_url=nats_url,
        nats_stream=unique_name("PRYVCHAOS").upper(),
        key_pepper=b"chaos-pepper",
        models_file=catalog,
        hold_ttl_seconds=HOLD_TTL_SECONDS,
    )
    settings.data_dir.mkdir(parents=True)
    env = {
        **relay_env(settings),
        "PRYV_MODELS_FILE": str(catalog),
        "PRYV_HOLD_TTL_SECONDS": str(HOLD_TTL_SECONDS),
        "PRYV_DEFAULT_RPM": "1000000",
        "PRYV_DEFAULT_TPM": "1000000000",
    }
    python = [sys.executable, "-m", "cli.main"]
    workers = {
        role: cluster.add(Proc(role, [*python, role], tmp_path / f"{role}.log", env))
        for role in ("relay", "project", "sweep")
    }
    api_ports = [free_port(), free_port()]
    apis = [
        cluster.add(
            Proc(
                f"api{i}",
                [*python, "serve", "--no-workers", "--port", str(port), "--log-level", "warning"],
                tmp_path / f"api{i}.log",
                env,
            )
        )
        for i, port in enumerate(api_ports)
    ]
    urls = [f"http://127.0.0.1:{port}" for port in api_ports]
    tally = Tally()
    platform: Platform | None = None
    try:
        redis_proc.start()
        nats_proc.start()
        await wait_redis(redis_proc, redis_port)
        await wait_nats(nats_proc, nats_url)
        platform = await open_platform(settings)  # creates the tables and the NATS stream
        for proc in [*workers.values(), *apis]:
            proc.start()
        store = platform.read_store
        assert isinstance(store, RedisReadStore)

        # The pipeline is live once the projector applied an event written now.
        opened = await asyncio.to_thread(platform.app.open_account, "0x" + "c" * 40)
        assert opened.position is not None
        deadline = time.monotonic() + START_TIMEOUT
        while (await min_position(store) or 0) < opened.position:
            cluster.assert_alive()
            assert time.monotonic() < deadline, "relay/projector never applied the first event"
            await asyncio.sleep(0.1)

        harness = Gateway("", platform)
        small_wallet = "0x" + "5" * 40
        keys = [
            LoadKey(await harness.funded_key(usd="2"), "test", "large", 4),
            LoadKey(await harness.funded_key(usd="0.002"), "test", "tiny", 1.5),
            LoadKey(await harness.funded_key(usd="0.02", wallet=small_wallet), "test", "small", 1),
            LoadKey(
                await harness.funded_key(usd="0", wallet=small_wallet), "test", "small", 1
            ),  # a second key on the same account: both spend one balance
            LoadKey(await harness.funded_key(env="live", usd="0.05"), "live", "live", 2.5),
        ]
        await asyncio.gather(*(wait_http(api, url) for api, url in zip(apis, urls, strict=True)))
        timings["startup"] = time.monotonic() - began

        follower = LogFollower(platform)

        async def recovered(what: str, since: float, target: int) -> None:
            """Every process up, a 200 through each API after `since`, and the read models past
            log position `target` (reached after the restart)."""
            deadline = time.monotonic() + RECOVERY_TIMEOUT
            while True:
                cluster.assert_alive()
                ok = all(tally.last_ok.get(url, 0.0) > since for url in urls)
                applied = await min_position(store)
                if ok and applied is not None and applied >= target:
                    timings[f"recovery: {what}"] = time.monotonic() - since
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"no recovery {RECOVERY_TIMEOUT}s after {what}: 200 since then per API "
                        f"{[tally.last_ok.get(u, 0.0) > since for u in urls]}, projections at "
                        f"{applied} (want {target}), statuses {dict(tally.by_phase[tally.phase])}"
                    )
                await asyncio.sleep(0.2)

        async def kill_and_restart(
            what: str, proc: Proc, ready: Callable[[], Any] | None = None
        ) -> None:
            tally.enter(f"kill {what}")
            since = time.monotonic()
            proc.kill()
            await asyncio.sleep(DOWN_SECONDS)
            cluster.assert_alive(except_=proc.name)
            proc.start()
            if ready is not None:
                await ready()
            target = await asyncio.to_thread(platform.app.max_position)
            await recovered(what, since, target)
            tally.enter(f"after {what}")
            await asyncio.sleep(STEADY_SECONDS)

        async with running_load(urls, keys, tally):
            tally.enter("warm-up")
            t0 = time.monotonic()
            target = await asyncio.to_thread(platform.app.max_position)
            await recovered("warm-up", t0, target)
            await asyncio.sleep(STEADY_SECONDS)
            await kill_and_restart("api0", apis[0], lambda: wait_http(apis[0], urls[0]))
            await kill_and_restart("relay", workers["relay"])
            await kill_and_restart("projector", workers["project"])
            await kill_and_restart("nats", nats_proc, lambda: wait_nats(nats_proc, nats_url))
            await kill_and_restart("redis", redis_proc, lambda: wait_redis(redis_proc, redis_port))
            tally.enter("stopping")
        timings["chaos (load running)"] = time.monotonic() - t0

        # Quiescence: every hold settled (the sweeper expires those of killed requests), no hold
        # left in the read model, and the read models caught up with the whole log.
        t1 = time.monotonic()
        deadline = t1 + QUIESCENCE_TIMEOUT
        while True:
            cluster.assert_alive()
            await follower.poll()
            open_rm = await balance.expired_hold_ids(store, 2**53, limit=20)
            applied = await min_position(store)
            head = await asyncio.to_thread(platform.app.max_position)
            if not follower.open_holds and not open_rm and applied is not None and applied >= head:
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not quiescent {QUIESCENCE_TIMEOUT}s after the load stopped: "
                    f"{len(follower.open_holds)} holds without a settlement in the log, "
                    f"{open_rm} open in the read model, projections at {applied} of {head}"
                )
            await asyncio.sleep(0.5)
        timings["quiescence"] = time.monotonic() - t1

        # --- invariants over the event log -------------------------------------------------
        log = await read_whole_log(platform)
        placed = [e for e in log if e.topic == topics.HOLD_PLACED]
        settled = [e for e in log if e.topic == topics.HOLD_SETTLED]
        credited, spent = postings(log)
        accounts = set(credited) | set(spent)

        fresh = RedisReadStore.from_url(redis_url, settings.redis_prefix)
        try:
            projected = {a: await balance.read_balance(fresh, *a) for a in accounts}
            served = await fresh.dump()
        finally:
            await fresh.close()
        replayed = MemoryReadStore()
        await replay_log(platform.app.read_log, replayed)
        rebuilt = await replayed.dump()

        upstream_calls = Counter(body.get("model") for body in upstream.received)
        summary = {
            "timings_s": {k: round(v, 1) for k, v in timings.items()},
            "requests": dict(tally.by_status.most_common()),
            "requests_by_phase": {p: dict(c.most_common()) for p, c in tally.by_phase.items()},
            "holds_placed": len(placed),
            "holds_settled": len(settled),
            "settled_by_outcome": dict(Counter(e.data["outcome"] for e in settled)),
            "placed_by_model": dict(Counter(e.data["model"] for e in placed)),
            "upstream_calls": dict(upstream_calls),
            "events": len(log),
            "balances": {
                f"{a[0][:8]}:{a[1]}": {
                    "credited": credited[a],
                    "spent": spent[a],
                    "projected": projected[a].balance_micros,
                }
                for a in sorted(accounts)
            },
            "process_starts": {n: p.starts for n, p in cluster.procs.items()},
            "projector_log": {
                "store_regressed": workers["project"].count("read store lost its data"),
                "cycle_failed": workers["project"].count("projector cycle failed"),
            },
        }
        print(f"\nchaos summary: {summary}")

        problems = money_violations(log, projected, served, rebuilt, upstream_calls, tally)
        problems += request_violations(tally)
        assert not problems, "\n".join(problems)
    except BaseException:
        cluster.print_tails()
        print(f"\nrequests by phase: { {p: dict(c) for p, c in tally.by_phase.items()} }")
        print(f"timings: {timings}")
        raise
    finally:
        if platform is not None:
            # the test's own connections first, while NATS and Redis are still up
            with contextlib.suppress(Exception):
                await asyncio.wait_for(platform.close(), 30)
        cluster.kill_all()


# --- read models lost: the two gaps this chaos test led to (both fixed) ---------------------
# Both simulate a Redis restart without persistence with `clear()` on a private key prefix of
# the shared Redis (nothing is restarted).


async def test_read_models_lost_while_idle_are_rebuilt(services_settings: Settings) -> None:
    platform = await open_platform(services_settings)
    try:
        async with running_workers(platform):
            await Gateway("", platform).funded_key(usd="1")
            head = await asyncio.to_thread(platform.app.max_position)
            await platform.read_store.clear()  # Redis restarted empty; nothing new is written
            deadline = time.monotonic() + 5
            while (await min_position(platform.read_store) or 0) < head:
                assert time.monotonic() < deadline, "read models still empty 5 s after the loss"
                await asyncio.sleep(0.1)
    finally:
        await platform.close()


async def test_no_admission_against_a_half_replayed_balance(services_settings: Settings) -> None:
    platform = await open_platform(services_settings)
    store = platform.read_store
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(Relay(platform.app.read_log, platform.bus).run(stop)),
        asyncio.create_task(Projector(platform.bus, store, batch_size=4).run(stop)),
    ]
    try:
        harness = Gateway("", platform)
        token = await harness.funded_key(usd="0.001")  # 1000 micros
        record = await keys.read_key(store, parse_api_key(token).key_id)
        assert record is not None
        identity = KeyIdentity(
            record.key_id, str(ids.api_key_id(record.key_id)), record.account_id, record.env
        )
        model = platform.catalog.get("pryv-echo")
        assert model is not None

        async def spend(request_id: str) -> None:
            metered = await platform.meter.admit(
                identity, model, request_id, hold_micros=100, estimated_tokens=1
            )
            await platform.meter.settle(metered, Usage(1, 0), "ok", price_micros=100)

        for n in range(10):  # spend the whole balance: every later request must be refused
            await spend(f"spend-{n}")
        await harness.settled()
        before = await balance.read_balance(store, record.account_id, "test")
        assert before.available_micros == 0, before

        admitted: list[int] = []
        serve_writes = store.apply

        async def apply_then_probe(*args: Any, **kwargs: Any) -> int:
            """After each replayed batch, try a request as a client would at that moment."""
            applied = await serve_writes(*args, **kwargs)
            with contextlib.suppress(AdmissionRefused):
                await spend(f"probe-{len(admitted)}-{time.monotonic_ns()}")
                admitted.append(await min_position(store) or 0)
            return applied

        store.apply = apply_then_probe  # type: ignore[method-assign]
        await store.clear()  # Redis restarted empty
        await asyncio.to_thread(platform.app.open_account, "0x" + "e" * 40)  # wakes the projector
        await harness.settled()
        after = await balance.read_balance(store, record.account_id, "test")
        assert not admitted, (
            f"{len(admitted)} requests admitted while the replay was at positions {admitted}; "
            f"the account is now at {after} (available {after.available_micros})"
        )
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await platform.close()
