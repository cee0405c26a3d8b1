"""Health, readiness, Prometheus metrics and structured access logs.

The access log is one JSON line per request (method, route template, status, duration, request
id) — never headers, bodies, prompts or keys. Metrics cover every API process: with
`--processes N` they run in prometheus_client's multiprocess mode (infra/metrics.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from api.context import platform_of
from domain.merkle import Checkpoint
from infra.checkpoints import open_checkpoint_store
from infra.log_format import REQUEST_ID
from infra.metrics import ReadCounters, SyncedCounters, exposition, multiprocess
from infra.upstreams import UpstreamStats
from projections import balance
from projections.catalog import PROJECTIONS

access_log = logging.getLogger("pryv.access")
CLIENT_CLOSED_REQUEST = 499

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


_GAUGE_MODE: Final = "mostrecent"  # multiprocess: the value the latest scrape set, in any process


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._synced: list[SyncedCounters] = []
        self.requests = Counter(
            "pryv_http_requests",
            "HTTP requests",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "pryv_http_request_duration_seconds",
            "Time to the end of the response",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.batch_size = Histogram(
            "pryv_group_commit_batch_size",
            "Events per event-store transaction on the request path",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )
        self.holds_open = Gauge(
            "pryv_holds_open",
            "Holds not yet settled",
            registry=self.registry,
            multiprocess_mode=_GAUGE_MODE,
        )
        self.log_position = Gauge(
            "pryv_event_log_position",
            "Last notification id in the log",
            registry=self.registry,
            multiprocess_mode=_GAUGE_MODE,
        )
        self.projection_lag = Gauge(
            "pryv_projection_lag_events",
            "Log positions a projection is behind",
            ["projection"],
            registry=self.registry,
            multiprocess_mode=_GAUGE_MODE,
        )
        self.relay_lag = Gauge(
            "pryv_relay_lag_events",
            "Log positions the bus is behind",
            registry=self.registry,
            multiprocess_mode=_GAUGE_MODE,
        )
        self.sealer_lag = Gauge(
            "pryv_sealer_lag_events",
            "Log positions beyond the last checkpoint (not sealed yet)",
            registry=self.registry,
            multiprocess_mode=_GAUGE_MODE,
        )
        self.checkpoint_age = Gauge(
            "pryv_checkpoint_age_seconds",
            "Seconds since the last checkpoint was signed (0 before the first)",
            registry=self.registry,
            multiprocess_mode=_GAUGE_MODE,
        )

        # One series per API process (multiprocess mode labels each with its pid): which
        # processes a scrape speaks for, and when each started.
        self.started = Gauge(
            "pryv_process_start_time_seconds",
            "When this API process started (Unix time)",
            registry=self.registry,
            multiprocess_mode="all",
        )
        self.started.set(time.time())

    def sync(self) -> None:
        """Copy counts kept elsewhere into this process's counters (multiprocess mode)."""
        for synced in self._synced:
            synced.sync()

    def watch_ner_batches(self, read: Callable[[], tuple[int, int]]) -> None:
        """Export the PII engine's NER batching (texts / batches = mean batch size)."""
        self.watch_counters(
            read,
            ("pryv_pii_ner_batches", "spaCy NER batches run for PII redaction"),
            ("pryv_pii_ner_texts", "Texts those NER batches carried"),
        )

    def watch_upstreams(self, read: Callable[[], UpstreamStats]) -> None:
        """Export the upstream calls the router counts: per model and outcome, and seconds."""
        if not multiprocess():
            self.registry.register(_UpstreamCalls(read))
            return
        self._synced.append(
            SyncedCounters(
                "pryv_upstream_requests",
                _UPSTREAM_CALLS_HELP,
                ("model", "outcome"),
                lambda: {labels: float(n) for labels, n in read().calls.items()},
                self.registry,
            )
        )
        self._synced.append(
            SyncedCounters(
                "pryv_upstream_seconds",
                _UPSTREAM_SECONDS_HELP,
                ("model",),
                lambda: {(model,): total for model, total in read().seconds.items()},
                self.registry,
            )
        )

    def watch_counters(self, read: Callable[[], tuple[int, ...]], *names: tuple[str, str]) -> None:
        """Export counters that another component keeps, read at scrape time: `read` returns
        one value per (name, help) pair."""
        if not multiprocess():
            self.registry.register(ReadCounters(read, names))
            return
        for index, (name, documentation) in enumerate(names):

            def total(index: int = index) -> Mapping[tuple[str, ...], float]:
                return {(): float(read()[index])}

            self._synced.append(SyncedCounters(name, documentation, (), total, self.registry))


_UPSTREAM_CALLS_HELP = "Calls to model servers, by model and outcome (ok, error)"
_UPSTREAM_SECONDS_HELP = "Seconds model servers took to answer (to the first chunk of a stream)"


class _UpstreamCalls(Collector):
    def __init__(self, read: Callable[[], UpstreamStats]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        stats = self._read()
        calls = CounterMetricFamily(
            "pryv_upstream_requests", _UPSTREAM_CALLS_HELP, labels=["model", "outcome"]
        )
        for (model, outcome), count in sorted(stats.calls.items()):
            calls.add_metric([model, outcome], count)
        yield calls
        seconds = CounterMetricFamily(
            "pryv_upstream_seconds", _UPSTREAM_SECONDS_HELP, labels=["model"]
        )
        for model, total in sorted(stats.seconds.items()):
            seconds.add_metric([model], total)
        yield seconds


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class ObservabilityMiddleware:
    """Request id, access log and request metrics for every HTTP request (streams included:
    the duration runs to the last body chunk). Plain ASGI, so streaming stays streaming."""

    def __init__(self, app: ASGIApp, metrics: Metrics, access_log_sample: float = 1.0) -> None:
        """`access_log_sample`: the share of successful requests written to the access log
        (PRYV_ACCESS_LOG_SAMPLE); every 4xx and 5xx is written, and metrics count them all."""
        self.app = app
        self.metrics = metrics
        self.access_log_sample = access_log_sample

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        supplied = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = supplied if 0 < len(supplied) <= 128 else f"req_{uuid.uuid4().hex}"
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 0  # no response started yet

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                raw = list(message.get("headers") or [])
                if not any(name.lower() == b"x-request-id" for name, _ in raw):
                    raw.append((b"x-request-id", request_id.encode("latin-1")))
                    message["headers"] = raw
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            status = status or 500
            raise
        finally:
            # Returned without answering: the client left first (nginx's 499), not a failure.
            status = status or CLIENT_CLOSED_REQUEST
            elapsed = time.perf_counter() - started
            route, method = _route(scope), str(scope.get("method", ""))
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method).observe(elapsed)
            if status >= 400 or random.random() < self.access_log_sample:
                access_log.info(
                    "request",
                    extra={
                        "pryv": {
                            "request_id": request_id,
                            "method": method,
                            "route": route,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 2),
                        }
                    },
                )
            REQUEST_ID.reset(token)


router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


async def _check(
    name: str, probe: Awaitable[Any], checks: dict[str, Any], *, bounded: bool = False
) -> Any:
    """`bounded`: the probe times out by itself (the Redis client's socket timeouts), so it
    is not cancelled from outside; others get 2 s."""
    try:
        value = await (probe if bounded else asyncio.wait_for(probe, 2.0))
    except Exception as exc:  # any failure means "not ready", with the reason
        checks[name] = {"ok": False, "error": type(exc).__name__}
        return None
    checks[name] = {"ok": True}
    return value


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """Readiness: event store, bus and read store reachable; projections within the lag bound."""
    platform = platform_of(request)
    checks: dict[str, Any] = {}
    log_end = await _check("event_store", asyncio.to_thread(platform.app.max_position), checks)
    await _check("bus", platform.bus.last_published_position(), checks)
    positions = await _check(
        "read_store",
        asyncio.gather(*(platform.read_store.position(name) for name in PROJECTIONS)),
        checks,
        bounded=True,
    )
    if log_end is not None and positions is not None:
        lag = max(log_end - p.position for p in positions)
        bound = platform.settings.ready_max_lag
        checks["projection_lag"] = {"ok": lag <= bound, "lag": lag, "bound": bound}
    ready = all(check["ok"] for check in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


async def _latest_checkpoint(request: Request) -> Checkpoint | None:
    """The newest checkpoint (a store opened for the scrape: scrapes are seconds apart)."""
    store = await open_checkpoint_store(platform_of(request).settings)
    try:
        record = await asyncio.wait_for(store.latest(), 2.0)
    finally:
        await store.close()
    return record.checkpoint if record is not None else None


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    platform = platform_of(request)
    metrics: Metrics = request.app.state.metrics
    try:
        log_end = await asyncio.to_thread(platform.app.max_position)
        metrics.log_position.set(log_end)
        metrics.relay_lag.set(max(log_end - await platform.bus.last_published_position(), 0))
        for name in PROJECTIONS:
            position = (await platform.read_store.position(name)).position
            metrics.projection_lag.labels(name).set(max(log_end - position, 0))
        open_holds = await platform.read_store.sorted_by_score(
            balance.EXPIRY_KEY, max_score=2**53, limit=1_000_000
        )
        metrics.holds_open.set(len(open_holds))
        latest = await _latest_checkpoint(request)
        metrics.sealer_lag.set(max(log_end - (latest.last_notification_id if latest else 0), 0))
        if latest is not None:
            signed = datetime.fromisoformat(latest.created_at.replace("Z", "+00:00"))
            metrics.checkpoint_age.set(max((datetime.now(UTC) - signed).total_seconds(), 0.0))
    except Exception:  # a backing service is down: still serve the request metrics
        logging.getLogger("pryv.metrics").warning("backing service unavailable for gauges")
    metrics.sync()
    return Response(exposition(metrics.registry), media_type=CONTENT_TYPE_LATEST)
