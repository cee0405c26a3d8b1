"""Gateway overhead: latency through Pryv versus straight to the same upstream (and a peer).

    uv run python bench/overhead.py                        # PostgreSQL + NATS + Redis
    uv run python bench/overhead.py --embedded             # SQLite + in-process
    uv run python bench/overhead.py --modes json sse --concurrency 1 16 64 256 --seconds 6
    uv run python bench/overhead.py --stream --processes 2 # SSE only, 2 API processes
    uv run python bench/overhead.py --stream both          # JSON and SSE
    uv run python bench/overhead.py --pii on --litellm off # redaction on only, no peer

Starts a fake OpenAI upstream process and Pryv with its full request path (bearer auth,
admission with rate limits and credit hold, durable group-committed hold and settlement; in
production shape the relay and projector are processes of their own), creates a funded key,
then loads each target with the same driver at each concurrency and prints p50/p95/p99,
throughput, the latency added over calling the upstream directly, and CPU per request.

Targets: `direct` (the fake itself), `pryv pii=on` (the default: the prompt goes through PII
redaction), `pryv pii=off` (the same body plus `"skip_pii_redaction": true`, so the cost of
redaction shows separately), and `litellm` when the peer venv exists (see bench/peers/README.md:
`bench/peers/.venv-litellm/bin/litellm`, or PRYV_LITELLM_BIN): a LiteLLM proxy with the same
number of worker processes as Pryv API processes, pointed at the same fake, sent the same body
as `pryv pii=on`. LiteLLM is never a dependency of Pryv.

Each point: a warm-up with the same load, a wait until every process the benchmark started is
idle again (requests abandoned by the warm-up or the previous run drained), then the run. Columns
besides latency: `cpu ms/req` is CPU per completed request of the gateway's processes (`gw`) and
with Pryv's relay, projector, PostgreSQL, Redis and NATS (`+bk`); `other` is the cores busy with
processes that are not part of the benchmark (the machine may be shared). `(!)` marks a p99 near
the run length: the slowest requests never completed, so the tail is cut. The summary gives the
best req/s per target over the concurrencies (its saturation throughput) and the ratios to the
peer; `--json-out` keeps every figure.

The driver is wrk (Debian `wrk`; C, so a 2-core machine measures the gateway, not the driver),
or a Python httpx driver when wrk is absent. Everything it creates lives under a unique
schema / Redis prefix / NATS stream and is removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psycopg
import redis

from infra.operator_key import OperatorSigner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bootstrap.platform import open_application  # noqa: E402
from domain.money import usd_to_micros  # noqa: E402
from infra.settings import Settings  # noqa: E402

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
MESSAGES = [{"role": "user", "content": "Say hello to the benchmark, briefly please."}]
CATALOG = """
[upstreams.fake]
base_url = "{url}"
max_connections = 512

[[models]]
id = "bench-model"
upstream = "fake"
upstream_model = "bench"
input_price_per_million_usd = "0.10"
output_price_per_million_usd = "0.20"
context_length = 8192
max_output_tokens = 64
"""
PEERS = ROOT / "bench" / "peers"
LITELLM_CONFIG = PEERS / "litellm_config.yaml"
LITELLM_BIN = PEERS / ".venv-litellm" / "bin" / "litellm"
PORTKEY_SERVER = PEERS / ".portkey" / "node_modules" / "@portkey-ai" / "gateway" / "build"
PORTKEY_SERVER = PORTKEY_SERVER / "start-server.js"
LITELLM_TEMPLATE_URL = "http://127.0.0.1:9100/v1"  # the api_base in litellm_config.yaml
SERVICES = ("postgres", "redis-server", "nats-server")
FAIRNESS = (
    "# fairness: Pryv runs its full path: key lookup, admission (rate limits, budget, credit\n"
    "#   hold) in Redis, a durable hold in PostgreSQL before the upstream call and settlement\n"
    "#   after, events relayed to NATS and projected to Redis by separate processes; pii=on adds\n"
    "#   PII redaction (regexes + spaCy NER) of the prompt, pii=off sends skip_pii_redaction.\n"
    "#   LiteLLM runs with no database: no metering, no budgets, no rate limits, no PII, no\n"
    "#   spend logs; master-key auth and proxying only. Both serve with uvicorn + uvloop and the\n"
    "#   same number of processes. cpu ms/req: gw = the gateway's own processes; +bk adds\n"
    "#   Pryv's relay, projector, PostgreSQL, Redis and NATS (machine-wide: other users count).\n"
    "#   other = cores busy with processes that are not part of this benchmark (shared box)."
)


@dataclass(frozen=True)
class Result:
    p50: float
    p95: float
    p99: float
    rps: float
    errors: int
    requests: int = 0
    gw_cpu_ms: float | None = None  # gateway processes' CPU per request
    bk_cpu_ms: float | None = None  # plus backends (relay, projector, services)
    other_cores: float | None = None  # foreign load during the run
    error_kinds: str = ""  # wrk's breakdown: "timeout 3, non-2xx 1"
    truncated: bool = False  # p99 near the run length: slower requests never completed
    cpu_by_role: dict[str, float] = field(default_factory=dict)  # ms/request per process kind
    ops_per_request: dict[str, float] = field(default_factory=dict)  # service operations
    api_rss_mb: float | None = None  # the gateway's processes after the point


@dataclass
class Target:
    name: str
    url: str
    token: str
    body: dict[str, object]  # merged over the mode's body
    gateway_pids: Callable[[], list[int]] = lambda: []
    backend_pids: Callable[[], list[int]] = lambda: []
    # Pryv's processes by kind (api, relay, projector, postgres, redis, nats), for the breakdown.
    roles: Callable[[], dict[str, list[int]]] = lambda: {}
    counters: Callable[[], dict[str, float]] = lambda: {}  # services' operation counters
    headers: dict[str, str] = field(default_factory=dict)  # sent with every request


@dataclass
class Point:
    mode: str
    concurrency: int
    target: str
    result: Result | None
    error: str | None = None


@dataclass
class Report:
    deployment: str
    processes: int
    litellm_workers: int | None
    litellm_version: str | None
    seconds: float
    driver: str
    loadavg_start: str
    loadavg_end: str = ""
    points: list[Point] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- CPU accounting from /proc (Linux) ---------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """(ppid, user+system CPU seconds) of a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        st = _stat(pid)
        if st:
            children.setdefault(st[0], []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def pids_named(names: tuple[str, ...]) -> list[int]:
    out = []
    for pid in _all_pids():
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() in names:
                out.append(pid)
    return out


def rss_mb(pids: list[int]) -> float:
    """Resident memory of the processes, MB (VmRSS)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, StopIteration, ValueError):
            status = Path(f"/proc/{pid}/status").read_text()
            line = next(row for row in status.splitlines() if row.startswith("VmRSS:"))
            total += int(line.split()[1])
    return total / 1024


def cpu_seconds(pids: list[int]) -> float:
    return sum(st[1] for st in map(_stat, pids) if st)


def machine_busy_seconds() -> float:
    """CPU seconds spent busy by all cores since boot (from /proc/stat)."""
    parts = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    return (sum(parts[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def settle(pids: Callable[[], list[int]], limit: float = 30.0, cores: float = 0.15) -> float:
    """Wait until the given processes together use under `cores` of CPU: requests the driver
    abandoned at the end of a warm-up or of a run still being served, relay and projector
    catching up, a worker process still importing. Returns the seconds waited."""
    started = time.monotonic()
    watched = pids()
    while time.monotonic() - started < limit:
        before = cpu_seconds(watched)
        time.sleep(0.3)
        if cpu_seconds(watched) - before < 0.3 * cores:
            break
    return time.monotonic() - started


# --- processes ---------------------------------------------------------------------------------


@contextlib.contextmanager
def process(
    args: list[str],
    env: dict[str, str],
    ready_url: str | None = None,
    *,
    log: Path | None = None,
    ready_timeout: float = 30.0,
    pids: list[int] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run args in a session of its own (so its worker children stop with it)."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    if pids is not None:
        pids.append(proc.pid)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:] if log else ""
                raise RuntimeError(f"{Path(args[0]).name} {args[1:4]} exited: {tail}")
            if ready_url is None:
                time.sleep(0.5)
                break
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(ready_url, timeout=1).status_code < 500:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{args[:4]} not ready at {ready_url} in {ready_timeout:g} s")
            time.sleep(0.1)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]


# --- drivers -----------------------------------------------------------------------------------


def run_wrk(
    url: str,
    token: str,
    body: dict[str, object],
    concurrency: int,
    seconds: float,
    headers: dict[str, str] | None = None,
) -> Result:
    extra = "\n".join(f"{k}: {v}" for k, v in (headers or {}).items())
    env = {**os.environ, "WRK_BODY": json.dumps(body), "WRK_AUTH": token, "WRK_HEADERS": extra}
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(concurrency, 2)}",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "-s",
            str(ROOT / "bench" / "wrk_report.lua"),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(row for row in out.splitlines() if row.startswith("RESULT "))
    f = dict(part.split("=") for part in line.split()[1:])
    kinds = []  # wrk's own summary still prints above the script's line
    socket_errors = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        names = ("connect", "read", "write", "timeout")
        kinds += [
            f"{n} {v}" for n, v in zip(names, socket_errors.groups(), strict=True) if v != "0"
        ]
    status = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if status:
        kinds.append(f"non-2xx {status.group(1)}")
    return Result(
        int(f["p50"]) / 1000,
        int(f["p95"]) / 1000,
        int(f["p99"]) / 1000,
        int(f["requests"]) / float(f["seconds"]),
        int(f["errors"]),
        int(f["requests"]),
        error_kinds=", ".join(kinds),
        truncated=int(f["p99"]) / 1e6 > 0.8 * float(f["seconds"]),
    )


async def run_httpx(
    url: str,
    token: str,
    body: dict[str, object],
    concurrency: int,
    seconds: float,
    extra_headers: dict[str, str] | None = None,
) -> Result:
    """Fallback driver: slower than wrk, so at high concurrency it measures itself too."""
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(extra_headers or {})
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with client.stream("POST", url, headers=headers, json=body) as response:
                    async for _ in response.aiter_bytes():
                        pass
                errors += response.status_code != 200
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return Result(pct(0.5), pct(0.95), pct(0.99), len(latencies) / wall, errors, len(latencies))


def drive(
    url: str,
    token: str,
    body: dict[str, object],
    concurrency: int,
    seconds: float,
    headers: dict[str, str] | None = None,
) -> Result:
    if shutil.which("wrk"):
        return run_wrk(url, token, body, concurrency, seconds, headers)
    return asyncio.run(run_httpx(url, token, body, concurrency, seconds, headers))


def first_contact(target: Target, body: dict[str, object], n: int = 24) -> str | None:
    """Fresh connections, a few at a time, so every API process loads what it loads lazily
    (spaCy for PII) before anything is measured. Returns an error text, or None."""
    headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
    headers.update(target.headers)
    payload = {**body, **target.body, "stream": False}

    def one(_: int) -> str | None:
        try:
            response = httpx.post(target.url, json=payload, headers=headers, timeout=60)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None if response.status_code == 200 else f"{response.status_code} {response.text}"

    with ThreadPoolExecutor(4) as pool:
        errors = [e for e in pool.map(one, range(n)) if e]
    return errors[0][:500] if errors else None


def measure(
    target: Target,
    body: dict[str, object],
    concurrency: int,
    seconds: float,
    warmup: float,
    quiet: Callable[[], list[int]],
    services: list[int],
) -> Result:
    """One point. quiet: every process this benchmark started (all idle before measuring);
    services: PostgreSQL, Redis, NATS (shared, so only counted, never waited for)."""
    payload = {**body, **target.body}
    if warmup > 0:  # the same load, briefly: pools on both sides grow to this concurrency
        drive(target.url, target.token, payload, concurrency, warmup, target.headers)
    else:
        with httpx.Client(timeout=30) as client:
            auth = {"Authorization": f"Bearer {target.token}"} if target.token else {}
            auth.update(target.headers)
            for _ in range(20):
                client.post(target.url, json={**payload, "stream": False}, headers=auth)
    if settle(quiet) >= 30:
        print(f"# {target.name}: still busy after 30 s; measuring anyway", flush=True)
    gw, bk, ours = target.gateway_pids(), target.backend_pids(), quiet() + services
    roles = target.roles()
    roles_before = {name: cpu_seconds(pids) for name, pids in roles.items()}
    counted_before = target.counters()
    gw_before, bk_before, ours_before = cpu_seconds(gw), cpu_seconds(bk), cpu_seconds(ours)
    busy_before = machine_busy_seconds()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once it has been waited for
    started = time.monotonic()
    result = drive(target.url, target.token, payload, concurrency, seconds, target.headers)
    wall = time.monotonic() - started
    kids_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    driver_cpu = (kids_after.ru_utime - kids.ru_utime) + (kids_after.ru_stime - kids.ru_stime)
    gw_cpu, bk_cpu = cpu_seconds(gw) - gw_before, cpu_seconds(bk) - bk_before
    mine = cpu_seconds(ours) - ours_before + driver_cpu
    other = max(0.0, machine_busy_seconds() - busy_before - mine)
    n = max(result.requests, 1)
    if roles:  # what the run left behind (relay/projector catching up) belongs to it too
        settle(lambda: [pid for pids in roles.values() for pid in pids], limit=15)
    by_role = {
        name: (cpu_seconds(pids) - roles_before[name]) * 1000 / n for name, pids in roles.items()
    }
    counted_after = target.counters()
    ops = {name: (counted_after[name] - counted_before[name]) / n for name in counted_after}
    api_rss = rss_mb(roles["api"]) if "api" in roles else None
    return Result(
        result.p50,
        result.p95,
        result.p99,
        result.rps,
        result.errors,
        result.requests,
        gw_cpu * 1000 / n if gw else None,
        (gw_cpu + bk_cpu) * 1000 / n if gw else None,
        other / wall,
        result.error_kinds,
        result.truncated,
        by_role,
        ops,
        api_rss,
    )


def soak(target: Target, body: dict[str, object], *, minutes: float, rate: float) -> None:
    """A steady, open-loop load (one request every 1/rate s) for `minutes`; each minute, the
    API processes' RSS, so growth shows (a leak is a line that keeps rising)."""
    headers = {"Authorization": f"Bearer {target.token}", **target.headers}
    payload = {**body, **target.body, "stream": False}
    started = time.monotonic()
    sent = failed = 0
    next_report = started
    print(f"# soak: {target.name} at {rate:g} req/s for {minutes:g} min")
    print("minute | requests | failed | api RSS MB")
    with httpx.Client(timeout=30) as client:
        while (now := time.monotonic()) - started < minutes * 60:
            if now >= next_report:
                rss = rss_mb(target.roles().get("api") or target.gateway_pids())
                print(f"{(now - started) / 60:6.1f} | {sent:8d} | {failed:6d} | {rss:8.0f}")
                next_report += 60
            try:
                answer = client.post(target.url, json=payload, headers=headers)
                failed += answer.status_code != 200
            except httpx.HTTPError:
                failed += 1
            sent += 1
            time.sleep(max(0.0, started + sent / rate - time.monotonic()))
    rss = rss_mb(target.roles().get("api") or target.gateway_pids())
    print(f"{minutes:6.1f} | {sent:8d} | {failed:6d} | {rss:8.0f}")


def service_counters(stream_name: str) -> dict[str, float]:
    """Operations the services did so far: Redis commands (INFO commandstats, minus the INFO
    calls themselves), PostgreSQL commits and rows inserted in the database, messages in the
    benchmark's NATS stream. Machine-wide for Redis and PostgreSQL: keep the box quiet."""
    info = redis.Redis().info("commandstats")
    commands = sum(v["calls"] for k, v in info.items() if k != "cmdstat_info")
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        row = conn.execute(
            "SELECT xact_commit, tup_inserted FROM pg_stat_database WHERE datname = 'test'"
        ).fetchone()
    commits, inserted = (float(row[0]), float(row[1])) if row else (0.0, 0.0)

    async def stream_messages() -> float:
        import nats

        nc = await nats.connect("nats://127.0.0.1:4222")
        try:
            return float((await nc.jetstream().stream_info(stream_name)).state.messages)
        finally:
            await nc.close()

    return {
        "redis commands": float(commands),
        "pg commits": commits - 2,  # this function's own two statements
        "pg rows": inserted,
        "nats messages": asyncio.run(stream_messages()),
    }


def breakdown(r: Result) -> str:
    """The indented line under a Pryv row: CPU per process kind, operations per request."""
    cpu = " ".join(f"{name} {ms:.2f}" for name, ms in r.cpu_by_role.items())
    if r.api_rss_mb is not None:
        cpu += f" | api RSS {r.api_rss_mb:.0f} MB"
    ops = ", ".join(f"{v:.1f} {name}" for name, v in r.ops_per_request.items())
    return f"     |   cpu ms/req: {cpu}\n     |   per request: {ops}"


# --- setup -------------------------------------------------------------------------------------


def cleanup(suffix: str, stream_name: str) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "bench_{suffix}" CASCADE')
    client = redis.Redis()
    for key in client.scan_iter(match=f"bench_{suffix}:*"):
        client.delete(key)

    async def drop_stream() -> None:
        import nats

        nc = await nats.connect("nats://127.0.0.1:4222")
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(stream_name)
        await nc.close()

    asyncio.run(drop_stream())


def litellm_binary() -> Path | None:
    configured = os.environ.get("PRYV_LITELLM_BIN")
    path = Path(configured) if configured else LITELLM_BIN
    return path if path.is_file() and os.access(path, os.X_OK) else None


def litellm_version(binary: Path) -> str | None:
    python = binary.parent / "python"
    out = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or None


def litellm_config(template: Path, upstream_url: str, dest: Path) -> str:
    """Write the peer config pointed at this run's fake; return its master key ('' if none)."""
    text = template.read_text()
    if LITELLM_TEMPLATE_URL not in text:
        raise ValueError(f"{template} has no api_base {LITELLM_TEMPLATE_URL} to replace")
    dest.write_text(text.replace(LITELLM_TEMPLATE_URL, upstream_url))
    found = re.search(r"^\s*master_key:\s*([^\s#]+)", text, re.MULTILINE)
    return found.group(1).strip("'\"") if found else ""


def litellm_env(env: dict[str, str]) -> dict[str, str]:
    peer = {
        k: v
        for k, v in env.items()
        if not k.startswith("PRYV_") and k not in {"DATABASE_URL", "REDIS_URL", "REDIS_HOST"}
    }
    peer.update(
        {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the price map at start
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY": "False",
            "VIRTUAL_ENV": "",
        }
    )
    return peer


# --- output ------------------------------------------------------------------------------------


def _ratio(a: float, b: float) -> str:
    return f"{a / b:5.2f}x" if b > 0 else "  n/a"


def row(concurrency: int, name: str, r: Result, d: Result | None) -> str:
    added = (
        f"{r.p50 - d.p50:8.2f} {r.p95 - d.p95:7.2f} {r.p99 - d.p99:7.2f}"
        if d and name != "direct"
        else f"{'':>8} {'':>7} {'':>7}"
    )
    cpu = (
        f"{r.gw_cpu_ms:5.2f} {r.bk_cpu_ms:5.2f}"
        if r.gw_cpu_ms is not None and r.bk_cpu_ms is not None
        else f"{'':>5} {'':>5}"
    )
    other = f"{r.other_cores:5.2f}" if r.other_cores is not None else f"{'':>5}"
    err = f"  errors {r.errors}/{r.requests} ({r.error_kinds or 'see wrk'})" if r.errors else ""
    err += "  (!) p99 near the run length" if r.truncated else ""
    return (
        f"{concurrency:>4} | {name:<13} | {r.p50:8.2f} {r.p95:7.2f} {r.p99:7.2f} {r.rps:7.0f} | "
        f"{added} | {cpu} | {other}{err}"
    )


HEADER = (
    f"{'conc':>4} | {'target':<13} | {'p50 ms':>8} {'p95':>7} {'p99':>7} {'req/s':>7} | "
    f"{'added p50':>8} {'p95':>7} {'p99':>7} | {'cpu ms/req':>11} | other"
)
SUBHEADER = (
    f"{'':>4} | {'':<13} | {'':>8} {'':>7} {'':>7} {'':>7} | {'':>8} {'':>7} {'':>7} | "
    f"{'gw':>5} {'+bk':>5} | cores"
)


def comparisons(results: dict[str, Result], direct: Result | None) -> list[str]:
    peer = results.get("litellm")
    if peer is None or direct is None:
        return []
    lines = []
    for name, r in results.items():
        if not name.startswith("pryv"):
            continue
        lines.append(
            f"     {name} / litellm: added p50 "
            f"{_ratio(r.p50 - direct.p50, peer.p50 - direct.p50)}, p99 "
            f"{_ratio(r.p99 - direct.p99, peer.p99 - direct.p99)}; req/s "
            f"{_ratio(r.rps, peer.rps)}"
            + (
                f"; gw cpu/req {_ratio(r.gw_cpu_ms, peer.gw_cpu_ms)}"
                if r.gw_cpu_ms and peer.gw_cpu_ms
                else ""
            )
        )
    return lines


def summary(report: Report, modes: list[str], names: list[str]) -> None:
    concs = sorted({p.concurrency for p in report.points})
    print(f"\n# max throughput: best req/s over concurrency {' '.join(map(str, concs))}")
    print(f"{'mode':<4} | " + " | ".join(f"{n:<19}" for n in names))
    best: dict[tuple[str, str], Result] = {}
    for mode in modes:
        cells = []
        for name in names:
            seen = [
                (p.result, p.concurrency)
                for p in report.points
                if p.mode == mode and p.target == name and p.result is not None
            ]
            if not seen:
                cells.append(f"{'-':<19}")
                continue
            top, at = max(seen, key=lambda pair: pair[0].rps)
            best[mode, name] = top
            cells.append(f"{f'{top.rps:.0f} @ conc {at}':<19}")
        print(f"{mode:<4} | " + " | ".join(cells))
    for mode in modes:
        for peer_name in ("portkey", "litellm"):
            peer = best.get((mode, peer_name))
            for name in names:
                mine = best.get((mode, name))
                if peer and mine and name.startswith("pryv"):
                    ratio = _ratio(mine.rps, peer.rps)
                    print(f"{mode:<4}   max req/s {name} / {peer_name}: {ratio}")


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedded", action="store_true")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--seconds", type=float, default=8.0, help="per measured point")
    parser.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="s of the same load before each point (0: 20 reqs)",
    )
    parser.add_argument(
        "--modes", nargs="+", choices=["json", "sse"], help="response kinds (default: json)"
    )
    parser.add_argument(
        "--stream",
        nargs="?",
        const="on",
        choices=["on", "off", "both"],
        help="shorthand: --stream = SSE only, --stream both = JSON and SSE",
    )
    parser.add_argument(
        "--pii",
        nargs="+",
        choices=["on", "off"],
        default=["on", "off"],
        help="Pryv with PII redaction on (default path) and/or off (skip_pii_redaction)",
    )
    parser.add_argument("--processes", type=int, default=1, help="API processes (production)")
    for peer, what in (("litellm", "the LiteLLM proxy"), ("portkey", "Portkey's OSS gateway")):
        parser.add_argument(
            f"--{peer}",
            choices=["auto", "on", "off"],
            default="auto",
            help=f"measure {what}: auto = when installed (bench/peers/README.md)",
        )
    parser.add_argument(
        "--litellm-workers", type=int, help="LiteLLM worker processes (default: --processes)"
    )
    parser.add_argument("--litellm-config", type=Path, default=LITELLM_CONFIG)
    parser.add_argument(
        "--prompt",
        default=MESSAGES[0]["content"],
        help="the user message (e.g. one with PII, so redaction has work to do)",
    )
    parser.add_argument(
        "--soak",
        type=float,
        metavar="MINUTES",
        help="instead of the points: the first Pryv target at --soak-rate for this long, "
        "printing the API processes' RSS every minute",
    )
    parser.add_argument("--soak-rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--json-out", type=Path, help="also write every figure here as JSON")
    parser.add_argument(
        "--keep-logs", type=Path, help="copy the gateways' and workers' logs to this directory"
    )
    args = parser.parse_args()
    modes: list[str] = (
        args.modes
        or {
            None: ["json"],
            "off": ["json"],
            "on": ["sse"],
            "both": ["json", "sse"],
        }[args.stream]
    )

    binary = litellm_binary() if args.litellm != "off" else None
    if args.litellm == "on" and binary is None:
        sys.exit(f"no LiteLLM at {os.environ.get('PRYV_LITELLM_BIN') or LITELLM_BIN}")
    litellm_workers = args.litellm_workers or args.processes

    suffix = uuid.uuid4().hex[:10]
    stream_name = f"BENCH_{suffix.upper()}"
    tmp = Path(tempfile.mkdtemp())
    upstream_port, gateway_port, litellm_port = free_port(), free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
    (tmp / "models.toml").write_text(CATALOG.replace("{url}", upstream_url))
    pepper = os.urandom(16)
    env = {
        **os.environ,
        "PRYV_DATA_DIR": str(tmp),
        "PRYV_MODELS_FILE": str(tmp / "models.toml"),
        "PRYV_KEY_PEPPER": pepper.hex(),
        "PRYV_DEFAULT_RPM": "100000000",
        "PRYV_DEFAULT_TPM": "100000000000",
    }
    if not args.embedded:
        env.update(
            {
                "PRYV_DATABASE_URL": POSTGRES_URL,
                "PRYV_DATABASE_SCHEMA": f"bench_{suffix}",
                "PRYV_REDIS_URL": "redis://127.0.0.1:6379/0",
                "PRYV_REDIS_PREFIX": f"bench_{suffix}",
                "PRYV_NATS_URL": "nats://127.0.0.1:4222",
                "PRYV_NATS_STREAM": stream_name,
            }
        )
    app = open_application(
        Settings(
            data_dir=tmp,
            database_url=env.get("PRYV_DATABASE_URL"),
            database_schema=env.get("PRYV_DATABASE_SCHEMA"),
            key_pepper=pepper,
        )
    )
    wallet = "0x" + uuid.uuid4().hex + "00000000"
    operator = OperatorSigner("0x" + uuid.uuid4().hex * 2)  # a throwaway operator key
    key = app.create_key(
        authorization=operator,
        wallet=wallet,
        name="bench",
        env="live",
        models=[],
        rpm=None,
        tpm=None,
        monthly_budget_micros=None,
        expires_at=None,
        pepper=pepper,
    ).issued.token
    app.grant_credits(
        authorization=operator,
        wallet=wallet,
        env="live",
        amount_micros=usd_to_micros("1000000"),
        reason="benchmark",
        granted_by="bench",
        grant_ref=f"bench-{suffix}",
    )
    app.close()

    cli = [sys.executable, "-m", "cli.main"]
    serve = [*cli, "serve", "--port", str(gateway_port), "--log-level", "warning"]
    serve += (
        ["--workers"] if args.embedded else ["--no-workers", "--processes", str(args.processes)]
    )
    deployment = (
        "embedded (SQLite, in-process)"
        if args.embedded
        else f"PostgreSQL + NATS + Redis, {args.processes} API process(es)"
    )
    driver = "wrk" if shutil.which("wrk") else "httpx (install wrk for trustworthy figures)"
    report = Report(
        deployment=deployment,
        processes=args.processes,
        litellm_workers=litellm_workers if binary else None,
        litellm_version=litellm_version(binary) if binary else None,
        seconds=args.seconds,
        driver=driver,
        loadavg_start=Path("/proc/loadavg").read_text().strip(),
    )
    upstream_pids: list[int] = []
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(
                process(
                    [sys.executable, "-m", "tests.fakes.upstream", "--port", str(upstream_port)],
                    env,
                    f"{upstream_url}/models",
                    pids=upstream_pids,
                )
            )
            pryv_pids: list[int] = []
            worker_pids: list[int] = []
            if not args.embedded:  # production shape: relay and projector run on their own
                stack.enter_context(
                    process([*cli, "relay"], env, log=tmp / "relay.log", pids=worker_pids)
                )
                stack.enter_context(
                    process([*cli, "project"], env, log=tmp / "project.log", pids=worker_pids)
                )
            stack.enter_context(
                process(
                    serve,
                    env,
                    f"http://127.0.0.1:{gateway_port}/healthz",
                    log=tmp / "pryv.log",
                    pids=pryv_pids,
                )
            )
            services = [] if args.embedded else pids_named(SERVICES)

            def tree(roots: list[int]) -> Callable[[], list[int]]:
                return lambda: [pid for root in roots for pid in process_tree(root)]

            pryv_backends = lambda: tree(worker_pids)() + services  # noqa: E731

            def roles() -> dict[str, list[int]]:
                found = {"api": tree(pryv_pids)()}
                if not args.embedded:  # worker_pids: relay, then projector
                    found["relay"] = process_tree(worker_pids[0])
                    found["projector"] = process_tree(worker_pids[1])
                    for name, comm in (
                        ("postgres", "postgres"),
                        ("redis", "redis-server"),
                        ("nats", "nats-server"),
                    ):
                        found[name] = pids_named((comm,))
                return found

            def counters() -> dict[str, float]:
                return {} if args.embedded else service_counters(stream_name)

            pryv_url = f"http://127.0.0.1:{gateway_port}/v1/chat/completions"
            targets = [Target("direct", f"{upstream_url}/chat/completions", "", {})]
            for pii in args.pii:
                targets.append(
                    Target(
                        f"pryv pii={pii}",
                        pryv_url,
                        key,
                        {"model": "bench-model"}
                        | ({"skip_pii_redaction": True} if pii == "off" else {}),
                        tree(pryv_pids),
                        pryv_backends,
                        roles,
                        counters,
                    )
                )
            litellm_pids: list[int] = []
            if binary:
                config = tmp / "litellm_config.yaml"
                master_key = litellm_config(args.litellm_config, upstream_url, config)
                command = [
                    str(binary),
                    "--config",
                    str(config),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(litellm_port),
                    "--num_workers",
                    str(litellm_workers),
                ]
                try:
                    stack.enter_context(
                        process(
                            command,
                            litellm_env(env),
                            f"http://127.0.0.1:{litellm_port}/health/liveliness",
                            log=tmp / "litellm.log",
                            ready_timeout=180,
                            pids=litellm_pids,
                        )
                    )
                    targets.append(
                        Target(
                            "litellm",
                            f"http://127.0.0.1:{litellm_port}/v1/chat/completions",
                            master_key,
                            {"model": "bench-model"},
                            tree(litellm_pids),
                        )
                    )
                except RuntimeError as exc:
                    if args.litellm == "on":
                        raise
                    print(f"# LiteLLM did not start, measuring without it: {exc}")
                    binary = None
            portkey_pids: list[int] = []
            node = shutil.which("node")
            if args.portkey != "off" and node and PORTKEY_SERVER.is_file():
                portkey_port = free_port()
                peer_env = {k: v for k, v in env.items() if not k.startswith("PRYV_")}
                stack.enter_context(
                    process(
                        [node, str(PORTKEY_SERVER), f"--port={portkey_port}", "--headless"],
                        {**peer_env, "NODE_ENV": "production"},
                        f"http://127.0.0.1:{portkey_port}/",
                        log=tmp / "portkey.log",
                        pids=portkey_pids,
                    )
                )
                targets.append(
                    Target(
                        "portkey",
                        f"http://127.0.0.1:{portkey_port}/v1/chat/completions",
                        "sk-bench",
                        {"model": "bench-model"},
                        tree(portkey_pids),
                        headers={
                            "x-portkey-provider": "openai",
                            "x-portkey-custom-host": upstream_url,
                        },
                    )
                )
            elif args.portkey == "on":
                sys.exit(f"no Portkey gateway at {PORTKEY_SERVER} (or no node)")
            time.sleep(1.0)  # the key reaches the read models

            messages = [{"role": "user", "content": args.prompt}]
            base: dict[str, object] = {"model": "bench", "messages": messages, "max_tokens": 8}
            for target in list(targets):
                problem = first_contact(target, base)
                if problem:
                    if target.name != "litellm" or args.litellm == "on":
                        raise RuntimeError(f"{target.name}: {problem}")
                    print(f"# LiteLLM answers badly, measuring without it: {problem}")
                    targets.remove(target)
            for target in targets:  # e.g. a second worker process still importing
                settle(target.gateway_pids, limit=60)
            if args.soak:
                pryv = next(t for t in targets if t.name.startswith("pryv"))
                soak(pryv, base, minutes=args.soak, rate=args.soak_rate)
                return
            names = [t.name for t in targets]
            ours = tree(upstream_pids + pryv_pids + worker_pids + litellm_pids + portkey_pids)
            peer = next((t for t in targets if t.name == "litellm"), None)
            print(
                f"# gateway overhead, {deployment}; driver: {driver}; {args.seconds:g} s per "
                f"point after {args.warmup:g} s warm-up; load average at start "
                f"{report.loadavg_start.split(' ', 3)[:3]}"
            )
            if peer:
                print(
                    f"# peer: LiteLLM {report.litellm_version}, {litellm_workers} worker "
                    f"process(es), {binary}"
                )
                print(FAIRNESS)
            for mode in modes:
                body = {**base, "stream": mode == "sse"}
                print(f"\n# {mode.upper()}: {args.prompt!r}, max_tokens 8")
                print(HEADER)
                print(SUBHEADER)
                for concurrency in args.concurrency:
                    results: dict[str, Result] = {}
                    for target in targets:
                        try:
                            r = measure(
                                target,
                                body,
                                concurrency,
                                args.seconds,
                                args.warmup,
                                ours,
                                services,
                            )
                        except (subprocess.CalledProcessError, StopIteration) as exc:
                            report.points.append(
                                Point(mode, concurrency, target.name, None, str(exc))
                            )
                            print(f"{concurrency:>4} | {target.name:<13} | failed: {exc}")
                            continue
                        if r.requests and r.errors >= r.requests:  # nothing to compare
                            why = f"every answer failed ({r.error_kinds or 'see its log'})"
                            report.points.append(Point(mode, concurrency, target.name, None, why))
                            print(f"{concurrency:>4} | {target.name:<13} | failed: {why}")
                            continue
                        results[target.name] = r
                        report.points.append(Point(mode, concurrency, target.name, r))
                        print(row(concurrency, target.name, r, results.get("direct")), flush=True)
                        if len(r.cpu_by_role) > 1:  # production shape: the processes apart
                            print(breakdown(r), flush=True)
                    for line in comparisons(results, results.get("direct")):
                        print(line)
            summary(report, modes, names)
            report.loadavg_end = Path("/proc/loadavg").read_text().strip()
            print(f"# load average at end {report.loadavg_end.split(' ', 3)[:3]}")
    finally:
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in tmp.glob("*.log"):
                shutil.copy(log, args.keep_logs / log.name)
        if args.json_out:
            args.json_out.write_text(json.dumps(asdict(report), indent=2))
        if not args.embedded:
            cleanup(suffix, stream_name)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
