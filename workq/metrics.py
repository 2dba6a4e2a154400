"""Prometheus metrics (the `metrics` extra: prometheus_client).

A worker process counts its runs with a middleware (`workq_jobs_processed_total`, `workq_jobs_failed_total`,
`workq_job_duration_seconds`, labelled `job_name`) and reads its queues' length and latency from Redis at each
scrape (`workq_queue_length`, `workq_queue_latency_seconds`). The dashboard's `/metrics` serves the namespace-wide
figures from Redis (`NamespaceCollector`). No label ever carries a job id: one series per job name.

Under `workq worker --processes N` the children write their samples to files in a directory the supervisor owns
(prometheus_client's multiprocess mode) and the supervisor serves their sum with the queue gauges.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple

from workq.client import Client
from workq.complaints import Complaints
from workq.distribution import install_hint
from workq.errors import WorkqError
from workq.job import Job
from workq.middleware import Around
from workq.throughput import counted_outcome, read_totals

if TYPE_CHECKING:
    from prometheus_client import Counter, Histogram
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client reads it when it is imported: set before any import of it in a child."""
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
SAMPLE_FILE_HEADER = 8
"""Bytes before the first sample of a multiprocess file (how much of it is used, then padding): a shorter file is
one a child has created and not yet sized, and holds no sample."""
_UNREADABLE = (OSError, ValueError, RuntimeError, TypeError, struct.error)
"""What reading a child's sample file can raise: it vanished (the directory is being removed), or its bytes are not
samples (a child killed while writing, or anything else)."""


def require_prometheus() -> None:
    """Raise a clear error at the call when the extra is missing, not an ImportError deep in a worker."""
    if importlib.util.find_spec("prometheus_client") is None:
        raise WorkqError(f"metrics need prometheus_client: {install_hint('metrics')}")


class JobMetrics:
    """Run counters and durations of one process, fed by `middleware` (add it with `pool.middleware`)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        require_prometheus()
        from prometheus_client import CollectorRegistry, Counter, Histogram  # noqa: PLC0415 (optional extra)

        self.registry = registry if registry is not None else CollectorRegistry()
        self._processed = Counter(
            "workq_jobs_processed", "Runs that returned normally.", ["job_name"], registry=self.registry
        )
        self._failed = Counter(
            "workq_jobs_failed",
            "Runs that raised (not Retry): each is a retry or a death.",
            ["job_name"],
            registry=self.registry,
        )
        self._duration = Histogram(
            "workq_job_duration_seconds",
            "Wall time of a run through the middleware chain.",
            ["job_name"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self._series: dict[str, _NameSeries] = {}

    @property
    def middleware(self) -> Around:
        """The middleware to add with `pool.middleware`: it wraps sync and async chains alike."""
        return Around(self.measuring)

    def measuring(self, job: Job) -> _Measuring:
        """A context manager around one run: counted (processed, or failed if it raised, not `Retry`) and timed."""
        return _Measuring(self._series.get(job.name) or self._series_of(job.name))

    def _series_of(self, job_name: str) -> _NameSeries:
        """The labelled children of one job name, looked up once: `labels()` costs more than `inc()`."""
        series = _NameSeries(
            self._processed.labels(job_name), self._failed.labels(job_name), self._duration.labels(job_name)
        )
        self._series[job_name] = series
        return series


class _NameSeries(NamedTuple):
    processed: Counter
    failed: Counter
    duration: Histogram


class _Measuring:
    """One run being measured. A class rather than @contextmanager: entered on every run, it costs a fraction."""

    __slots__ = ("_series", "_started")

    def __init__(self, series: _NameSeries) -> None:
        self._series = series
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        series = self._series
        outcome = counted_outcome(kind)
        if outcome == "processed":
            series.processed.inc()
        elif outcome == "failed":
            series.failed.inc()
        series.duration.observe(time.perf_counter() - self._started)


class QueueCollector:
    """`workq_queue_length` and `workq_queue_latency_seconds` per job name, read from Redis at each scrape (the
    names given, or every known one). A scrape while Redis is away yields no queue gauges rather than failing."""

    def __init__(self, client: Client, job_names: Sequence[str] | None = None) -> None:
        self._client = client
        self._job_names = None if job_names is None else set(job_names)

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily  # noqa: PLC0415 (optional extra)

        length = GaugeMetricFamily("workq_queue_length", "Jobs waiting in the queue.", labels=["job_name"])
        latency = GaugeMetricFamily(
            "workq_queue_latency_seconds", "How long the next job of the queue has waited.", labels=["job_name"]
        )
        try:
            queues = self._client.queues()
        except WorkqError:
            return
        for queue in queues:
            if self._job_names is None or queue.job_name in self._job_names:
                length.add_metric([queue.job_name], queue.count)
                latency.add_metric([queue.job_name], queue.latency)
        yield length
        yield latency


class NamespaceCollector(QueueCollector):
    """Everything the dashboard's `/metrics` serves: the queue gauges of every job name, all-time processed and
    failed counts (written by every pool's tally, see workq.throughput), the sizes of the scheduled, retry and
    dead sets, and the live pools and busy workers."""

    def __init__(self, client: Client) -> None:
        super().__init__(client)

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # noqa: PLC0415 (optional extra)

        yield from super().collect()
        client = self._client
        try:
            totals = read_totals(client.redis, client.keys)
            sizes = client.set_sizes()
            pools = client.worker_pool_heartbeats()
            busy = client.worker_observations()
        except WorkqError:
            return
        for outcome, help_text in (("processed", "Runs that returned normally."), ("failed", "Runs that raised.")):
            family = CounterMetricFamily(f"workq_jobs_{outcome}", help_text, labels=["job_name"])
            for (name, counted), value in sorted(totals.items()):
                if counted == outcome:
                    family.add_metric([name], value)
            yield family
        for name, value, help_text in (
            ("workq_scheduled_jobs", sizes.scheduled, "Jobs waiting for their time."),
            ("workq_retry_jobs", sizes.retry, "Failed jobs waiting to run again."),
            ("workq_dead_jobs", sizes.dead, "Jobs out of retries."),
            ("workq_worker_pools", len(pools), "Worker pools with a heartbeat."),
            ("workq_busy_workers", len(busy), "Workers running a job."),
        ):
            yield GaugeMetricFamily(name, help_text, value=value)


def serve(registry: CollectorRegistry, port: int, host: str = "127.0.0.1") -> None:
    """Serve `registry` at `http://host:port/metrics` from a daemon thread (prometheus_client's own server)."""
    from prometheus_client import start_http_server  # noqa: PLC0415 (optional extra)

    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise WorkqError(f"cannot serve metrics on {host}:{port}: {exc}") from None


def pool_registry(client: Client, job_names: Sequence[str], metrics: JobMetrics) -> CollectorRegistry:
    """One worker process: its run metrics and its queues' gauges."""
    metrics.registry.register(QueueCollector(client, job_names))
    return metrics.registry


def children_registry(client: Client, job_names: Sequence[str], directory: str) -> CollectorRegistry:
    """A supervisor: the sum of its children's samples (their files in `directory`) and the queues' gauges."""
    require_prometheus()
    from prometheus_client import CollectorRegistry  # noqa: PLC0415 (optional extra)

    registry = CollectorRegistry()
    registry.register(ChildrenCollector(directory))
    registry.register(QueueCollector(client, job_names))
    return registry


class ChildrenCollector:
    """The sum of the samples that the children of `workq worker --processes N` write to files in `directory`
    (prometheus_client's multiprocess mode), from every file that can be read: a scrape never fails for one.

    Children come and go while the supervisor serves: a child creates its file empty and sizes it a moment later
    (a file in between holds no sample and is skipped), and a file that cannot be read is logged (once a minute)
    and left out, the others' samples served. A dead child's file stays: its counts are part of the totals."""

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._complaints = Complaints()

    def collect(self) -> Iterable[Metric]:
        from prometheus_client.multiprocess import MultiProcessCollector  # noqa: PLC0415 (optional extra)

        files = sorted(path for path in glob.glob(os.path.join(self._directory, "*.db")) if _sized(path))
        try:
            return MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call,no-any-return]
        except _UNREADABLE:
            readable = [path for path in files if self._readable(path)]
        try:
            return MultiProcessCollector.merge(readable, accumulate=True)  # type: ignore[no-untyped-call,no-any-return]
        except _UNREADABLE as exc:  # a file that went bad between the two reads: serve the queue gauges only
            self._complaints.report(self._directory, "metrics: cannot read the worker processes' samples: %r", exc)
            return []

    def _readable(self, path: str) -> bool:
        from prometheus_client.multiprocess import MultiProcessCollector  # noqa: PLC0415 (optional extra)

        try:
            MultiProcessCollector.merge([path], accumulate=True)  # type: ignore[no-untyped-call]
        except _UNREADABLE as exc:
            self._complaints.report(path, "metrics: skipping %s, a worker process's samples file: %r", path, exc)
            return False
        return True


def _sized(path: str) -> bool:
    """Whether the file holds at least its header (False also once it is gone)."""
    try:
        return os.path.getsize(path) >= SAMPLE_FILE_HEADER
    except OSError:
        return False
