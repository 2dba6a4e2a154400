"""One run of each benchmark, for one system: enqueue rate, processing rate, latency, idle CPU, memory.

Every measurement works in a key space of its own on the shared Redis, starts its producer and worker as
subprocesses, checks from the handlers' records that every job ran (and how many ran twice), and deletes its keys.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from benchmarks.peer_venv import ROOT
from benchmarks.space import ROOT_PREFIX, Space
from benchmarks.systems import System
from benchmarks.worker_process import WorkerProcess

POLL = 0.005
"""Seconds between looks at the set of done jobs: the resolution of the processing timings."""
RSS_EVERY = 0.25
WARMUP_NUMBER = -1
WARMUP_TIMEOUT = 60.0


class MeasurementFailed(Exception):
    """A producer or worker did not do its part; the message carries its output."""


@dataclass(frozen=True)
class Accounting:
    """What the handlers' records say: jobs expected, distinct jobs that ran, and extra runs of the same job."""

    expected: int
    ran: int
    duplicates: int

    @property
    def lost(self) -> int:
        return self.expected - self.ran


@dataclass(frozen=True)
class EnqueueSample:
    jobs_per_second: float
    round_trips_per_job: float


@dataclass(frozen=True)
class ProcessingSample:
    jobs_per_second: float
    cpu_us_per_job: float
    """The worker's CPU (whole process tree) per job while it processed, in microseconds."""
    redis_cpu_us_per_job: float
    """The Redis server's CPU per job over the same window (shared server: anything else running adds to it)."""
    accounting: Accounting


@dataclass(frozen=True)
class LatencySample:
    p50_ms: float
    p99_ms: float
    accounting: Accounting


@dataclass(frozen=True)
class MemorySample:
    start_rss: int
    """Bytes, idle after start-up and one job."""
    warm_rss: int
    """Bytes, after the first tenth of the jobs."""
    end_rss: int
    peak_rss: int
    accounting: Accounting


@dataclass(frozen=True)
class Point:
    """A look at a working worker: monotonic time, jobs done, worker CPU seconds, Redis server CPU seconds."""

    at: float
    done: int
    worker_cpu: float
    redis_cpu: float


@dataclass
class Progress:
    """The first look that saw a job done, the last look (when the count reached its end) and RSS samples."""

    first: Point | None = None
    last: Point | None = None
    rss_samples: list[tuple[int, int]] = field(default_factory=list)

    @property
    def done(self) -> int:
        return 0 if self.first is None or self.last is None else self.last.done - self.first.done


def nearest_rank(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


class Bench:
    """Runs measurements against one Redis, with logs of every worker in `workdir`."""

    def __init__(
        self,
        redis_url: str,
        workdir: Path,
        *,
        root: str = ROOT_PREFIX,
        stall_timeout: float = 30.0,
        settle: float = 2.0,
    ) -> None:
        self.redis_url = redis_url
        self.settle = settle
        """Seconds a warmed-up worker is left alone before an idle window or a latency run starts."""
        self.workdir = workdir
        self.root = root
        self.stall_timeout = stall_timeout
        self.client = redis.Redis.from_url(redis_url)
        self._counter = 0
        workdir.mkdir(parents=True, exist_ok=True)

    # --- the measurements ----------------------------------------------------------------------------------

    def enqueue(self, system: System, mode: str, jobs: int) -> EnqueueSample | None:
        """Jobs/s of one producer: `one` enqueue call per job, or `many` (the system's bulk call). None: no bulk."""
        with self.space(f"{system.key}-enqueue-{mode}") as space:
            result = self.produce(system, space, mode, jobs)
        if "unsupported" in result:
            return None
        return EnqueueSample(jobs / result["seconds"], result["round_trips_per_job"])

    def processing(self, system: System, jobs: int, processes: int = 1) -> ProcessingSample:
        """Jobs/s with `jobs` queued before the worker starts, between the first look that sees a job done and the
        look that sees the last one (interpreter start-up is not timed; looks are `POLL` apart)."""
        with self.space(f"{system.key}-processing") as space:
            self.produce(system, space, "fill", jobs)
            worker = self.start_worker(system, space, processes)
            try:
                progress = self.wait_done(space, jobs, worker, exits_when_empty=system.exits_when_empty)
            finally:
                worker.stop()
            accounting = self.accounting(space, jobs)
        first, last, done = progress.first, progress.last, progress.done
        if first is None or last is None or done == 0:
            raise MeasurementFailed(f"{system.label}: jobs did not run\n{worker.log_tail()}")
        return ProcessingSample(
            jobs_per_second=done / (last.at - first.at),
            cpu_us_per_job=1e6 * (last.worker_cpu - first.worker_cpu) / done,
            redis_cpu_us_per_job=1e6 * (last.redis_cpu - first.redis_cpu) / done,
            accounting=accounting,
        )

    def latency(self, system: System, jobs: int, rate: float) -> LatencySample:
        """Enqueue → handler start, with the worker idle beforehand and jobs arriving at `rate` per second."""
        with self.space(f"{system.key}-latency") as space:
            worker = self.start_worker(system, space)
            try:
                self.warm_up(system, space, worker)
                time.sleep(self.settle)
                self.produce(system, space, "paced", jobs, rate=rate)
                self.wait_done(space, jobs, worker)
            finally:
                worker.stop()
            accounting = self.accounting(space, jobs)
            latencies = sorted(float(value) for value in self.client.lrange(space.results.latencies, 0, -1))
        if not latencies:
            raise MeasurementFailed(f"{system.label}: no job ran\n{worker.log_tail()}")
        return LatencySample(1000 * nearest_rank(latencies, 0.5), 1000 * nearest_rank(latencies, 0.99), accounting)

    def idle_cpu(self, systems: list[System], seconds: float) -> dict[str, float]:
        """Percent of a core each system's idle worker uses over the same `seconds`, after a warm-up job."""
        with self._spaces([f"{system.key}-idle" for system in systems]) as spaces:
            workers: list[WorkerProcess] = []
            try:
                for system, space in zip(systems, spaces, strict=True):
                    workers.append(self.start_worker(system, space))
                for system, space, worker in zip(systems, spaces, workers, strict=True):
                    self.warm_up(system, space, worker)
                time.sleep(self.settle)
                before = [worker.cpu_seconds() for worker in workers]
                started = time.monotonic()
                time.sleep(seconds)
                after = [worker.cpu_seconds() for worker in workers]
                elapsed = time.monotonic() - started
            finally:
                for worker in workers:
                    worker.stop()
        return {
            system.key: 100 * (end - start) / elapsed for system, start, end in zip(systems, before, after, strict=True)
        }

    def memory(self, system: System, jobs: int) -> MemorySample:
        """RSS of a worker idle after start-up, after a tenth of `jobs`, at the end, and the highest seen."""
        with self.space(f"{system.key}-memory") as space:
            worker = self.start_worker(system, space)
            try:
                self.warm_up(system, space, worker)
                self.client.delete(*space.results.all())
                start_rss = worker.rss_bytes()
                producer = self._producer_process(system, space, "fill", jobs)
                progress = self.wait_done(space, jobs, worker, sample_rss=True)
                end_rss = worker.rss_bytes()
                _, stderr = producer.communicate()
                if producer.returncode != 0:
                    raise MeasurementFailed(f"{system.label}: producer failed\n{stderr[-2000:]}")
            finally:
                worker.stop()
            accounting = self.accounting(space, jobs)
        samples = progress.rss_samples or [(0, end_rss)]
        warm_rss = next((rss for done, rss in samples if done >= jobs // 10), end_rss)
        return MemorySample(start_rss, warm_rss, end_rss, max(rss for _, rss in samples), accounting)

    # --- the parts -----------------------------------------------------------------------------------------

    def start_worker(self, system: System, space: Space, processes: int = 1) -> WorkerProcess:
        command = system.worker(system.interpreter, space, self.redis_url, processes)
        log_path = self.workdir / f"{space.prefix}.log"
        return WorkerProcess(command, self._environment(system, space), ROOT, log_path).start()

    def produce(self, system: System, space: Space, mode: str, jobs: int, rate: float = 0.0) -> dict[str, Any]:
        process = self._producer_process(system, space, mode, jobs, rate)
        stdout, stderr = process.communicate()
        if process.returncode != 0:
            raise MeasurementFailed(f"{system.label}: producer {mode} failed\n{stderr[-2000:]}")
        result: dict[str, Any] = json.loads(stdout)
        return result

    def warm_up(self, system: System, space: Space, worker: WorkerProcess) -> None:
        """One job through the worker: proof it is up and has run the whole path once."""
        self.produce(system, space, "warmup", 1)
        deadline = time.monotonic() + WARMUP_TIMEOUT
        while not self.client.sismember(space.results.done, str(WARMUP_NUMBER)):
            if time.monotonic() > deadline or not worker.running():
                raise MeasurementFailed(f"{system.label}: worker never ran its warm-up job\n{worker.log_tail()}")
            time.sleep(POLL)
        self.client.delete(*space.results.all())

    def wait_done(
        self,
        space: Space,
        expected: int,
        worker: WorkerProcess,
        *,
        exits_when_empty: bool = False,
        sample_rss: bool = False,
    ) -> Progress:
        """Poll until `expected` jobs ran, the worker stalls for `stall_timeout` s, or it exits.

        CPU is read only at the first look that sees a job done and at the end, so polling costs next to nothing.
        """
        progress = Progress()
        last_change, last_count, last_rss = time.monotonic(), -1, 0.0
        while True:
            count = int(self.client.scard(space.results.done))
            now = time.monotonic()
            finished = count >= expected
            if count != last_count:
                last_change, last_count = now, count
                if progress.first is None and count > 0:
                    progress.first = self._point(now, count, worker)
                if sample_rss and (finished or now - last_rss >= RSS_EVERY):
                    progress.rss_samples.append((count, worker.rss_bytes()))
                    last_rss = now
            stalled = now - last_change > self.stall_timeout
            exited = not worker.running() and int(self.client.scard(space.results.done)) == count
            if finished or stalled or exited:
                if exited and not finished and not exits_when_empty:
                    print(f"worker exited early:\n{worker.log_tail()}", file=sys.stderr)
                progress.last = self._point(last_change, count, worker)
                return progress
            time.sleep(POLL)

    def _point(self, at: float, done: int, worker: WorkerProcess) -> Point:
        return Point(at, done, worker.cpu_seconds(), self._redis_cpu())

    def accounting(self, space: Space, expected: int) -> Accounting:
        ran = int(self.client.scard(space.results.done))
        duplicates = int(self.client.get(space.results.duplicates) or 0)
        return Accounting(expected, ran, duplicates)

    def _producer_process(
        self, system: System, space: Space, mode: str, jobs: int, rate: float = 0.0
    ) -> subprocess.Popen[str]:
        command = [
            str(system.interpreter.python),
            "-m",
            "benchmarks.producers",
            system.producer,
            mode,
            "--space",
            space.prefix,
            "--jobs",
            str(jobs),
            "--redis-url",
            self.redis_url,
        ]
        if rate:
            command += ["--rate", str(rate)]
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **self._environment(system, space)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def _environment(self, system: System, space: Space) -> dict[str, str]:
        return {**space.environment(self.redis_url), **system.interpreter.env}

    def _redis_cpu(self) -> float:
        info = self.client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    @contextmanager
    def space(self, label: str) -> Iterator[Space]:
        with self._spaces([label]) as spaces:
            yield spaces[0]

    @contextmanager
    def _spaces(self, labels: list[str]) -> Iterator[list[Space]]:
        """Fresh key spaces, whose keys are all deleted afterwards, whatever happened."""
        spaces = []
        for label in labels:
            self._counter += 1
            spaces.append(Space.new(f"{label}-{self._counter}", root=self.root))
        try:
            yield spaces
        finally:
            for space in spaces:
                self.delete(space)

    def delete(self, space: Space) -> None:
        keys = [key for pattern in space.delete_patterns for key in self.client.scan_iter(match=pattern, count=1000)]
        for start in range(0, len(keys), 1000):
            self.client.delete(*keys[start : start + 1000])
