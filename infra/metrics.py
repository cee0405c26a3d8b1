"""Prometheus plumbing shared by the API and the workers.

- Counters and gauges another component keeps (the router's upstream calls, the PII engine's
  work, a worker's progress), read when scraped.
- prometheus_client's multiprocess mode, for `pryv serve --processes N`: each process writes
  its samples to files in `PROMETHEUS_MULTIPROC_DIR` and whichever process answers a scrape
  reports them all. Counts kept outside prometheus_client cannot be read across processes, so
  in that mode they are copied into real counters (`SyncedCounters`) at every scrape and every
  few seconds.
- A worker's own `/metrics` port (`pryv relay|project|sweep|audit seal --metrics-port N`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from infra.settings import multiprocess_metrics_dir

Labels = tuple[str, ...]


def multiprocess() -> bool:
    """Whether this process writes its samples for a multiprocess scrape."""
    return multiprocess_metrics_dir() is not None


def prepare_multiprocess_dir(path: Path) -> None:
    """An empty sample directory for a new set of processes (stale files would be summed in,
    as prometheus_client's docs warn)."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def exposition(registry: CollectorRegistry) -> bytes:
    """The scrape body: this registry, or in multiprocess mode every process's samples."""
    if not multiprocess():
        return generate_latest(registry)
    merged = CollectorRegistry()
    MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
    return generate_latest(merged)


class ReadCounters(Collector):
    """Unlabelled counters read from their owner at scrape time (it counts; we report)."""

    def __init__(self, read: Callable[[], tuple[float, ...]], names: tuple[tuple[str, str], ...]):
        self._read = read
        self._names = names

    def collect(self) -> Iterator[Metric]:
        for (name, documentation), value in zip(self._names, self._read(), strict=True):
            yield CounterMetricFamily(name, documentation, value=value)


class ReadGauges(Collector):
    """Unlabelled gauges read from their owner at scrape time."""

    def __init__(self, read: Callable[[], tuple[float, ...]], names: tuple[tuple[str, str], ...]):
        self._read = read
        self._names = names

    def collect(self) -> Iterator[Metric]:
        for (name, documentation), value in zip(self._names, self._read(), strict=True):
            yield GaugeMetricFamily(name, documentation, value=value)


class SyncedCounters:
    """A labelled prometheus Counter that follows totals kept elsewhere: each `sync` adds what
    grew since the last one (multiprocess mode: the counter's samples go to the shared files)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: Labels,
        read: Callable[[], Mapping[Labels, float]],
        registry: CollectorRegistry,
    ) -> None:
        self._counter = Counter(name, documentation, list(labels), registry=registry)
        self._read = read
        self._seen: dict[Labels, float] = {}

    def sync(self) -> None:
        for labels, total in self._read().items():
            grown = total - self._seen.get(labels, 0.0)
            if grown > 0:
                child = self._counter.labels(*labels) if labels else self._counter
                child.inc(grown)
                self._seen[labels] = total


def serve_metrics(registry: CollectorRegistry, port: int, host: str = "127.0.0.1") -> None:
    """Serve `registry` at http://host:port/metrics from a daemon thread (a worker's port)."""
    start_http_server(port, addr=host, registry=registry)
