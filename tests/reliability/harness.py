"""Real processes for the reliability tests: private redis-servers, `workq worker` subprocesses, and the accounting
of which jobs ran, read from the records `reliability.app` handlers leave in Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import redis

from figures import record
from reliability import skewed_clock
from support import wait_for_count, wait_until
from workq import Client

TESTS_DIR = Path(__file__).resolve().parents[1]
APP = "reliability.app:make_pool"
HEARTBEAT_INTERVAL = 0.2
DEAD_AFTER = 2.0
"""Not the 1.0 s one would like: `heartbeat_at` is stored in whole seconds, so with 1.0 s a live pool beating every
0.2 s looks dead for a moment after each second boundary (see test_kill9.py, the live pool taken for dead)."""
WORKER_START_TIMEOUT = 20.0


def report(test: str, **figures: object) -> str:
    """Print one compact line of a test's figures (and keep it for the session summary)."""
    line = f"[reliability] {test}: " + " ".join(f"{name}={_format(value)}" for name, value in figures.items())
    record("reliability figures", line)
    return line


def _format(value: object) -> str:
    return f"{value:.2f}s" if isinstance(value, float) else str(value)


class WorkerProcess:
    """`python -m workq worker reliability.app:make_pool`, its stdout and stderr in a log file the test can read."""

    def __init__(
        self,
        redis_url: str,
        namespace: str,
        log_path: Path,
        *,
        concurrency: int,
        grace: float | None = None,
        dead_after: float = DEAD_AFTER,
        clock_offset: float = 0.0,
        env: dict[str, str] | None = None,
    ) -> None:
        """`clock_offset`: seconds this process's host clock is ahead (negative: behind), see `skewed_clock`;
        `env`: more environment variables for it (e.g. the ones `reliability.app` reads)."""
        self.redis_url = redis_url
        self.namespace = namespace
        self.log_path = log_path
        self._log_file = log_path.open("w")
        workq_args = ["worker", APP, "--redis-url", redis_url, "--namespace", namespace]
        workq_args += ["--concurrency", str(concurrency)]
        if grace is not None:
            workq_args += ["--grace", str(grace)]
        argv = skewed_clock.command(*workq_args) if clock_offset else [sys.executable, "-m", "workq", *workq_args]
        env = {
            **os.environ,
            "WORKQ_TEST_HEARTBEAT_INTERVAL": str(HEARTBEAT_INTERVAL),
            "WORKQ_TEST_DEAD_AFTER": str(dead_after),
            skewed_clock.OFFSET_ENV: str(clock_offset),
            **(env or {}),
        }
        self.process = subprocess.Popen(
            argv, cwd=TESTS_DIR, env=env, stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pool_id(self, timeout: float = WORKER_START_TIMEOUT) -> str:
        """The id of this process's pool, once its heartbeat is in Redis (i.e. it is ready to fetch)."""
        client = Client(self.namespace, self.redis_url)
        try:

            def registered() -> str:
                assert self.alive, f"worker {self.pid} exited with {self.process.returncode}:\n{self.log}"
                try:
                    beats = client.worker_pool_heartbeats()
                except Exception:  # Redis restarting; try again
                    return ""
                return next((beat.worker_pool_id for beat in beats if beat.pid == self.pid), "")

            return wait_until(registered, timeout=timeout, interval=0.02, what=f"worker {self.pid} to register")
        finally:
            client.redis.close()

    def wait_for_log(self, marker: str, *, times: int = 1, timeout: float = 10) -> None:
        wait_until(lambda: self.log.count(marker) >= times, timeout=timeout, what=f"{marker!r} in {self.log_path.name}")

    def kill(self) -> None:
        """kill -9: no handler runs, nothing is handed back."""
        if self.alive:
            self.process.kill()
        self.process.wait(10)

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def close(self) -> None:
        if self.alive:
            self.process.kill()
        try:
            self.process.wait(10)
        finally:
            self._log_file.close()


class Fleet:
    """Starts worker processes for one test and kills every one still running when the test ends."""

    def __init__(self, log_dir: Path, namespace: str) -> None:
        self._log_dir = log_dir
        self._namespace = namespace
        self.workers: list[WorkerProcess] = []

    def start(
        self,
        redis_url: str,
        *,
        concurrency: int = 5,
        grace: float | None = None,
        dead_after: float = DEAD_AFTER,
        clock_offset: float = 0.0,
        env: dict[str, str] | None = None,
    ) -> WorkerProcess:
        log_path = self._log_dir / f"worker-{len(self.workers)}.log"
        worker = WorkerProcess(
            redis_url,
            self._namespace,
            log_path,
            concurrency=concurrency,
            grace=grace,
            dead_after=dead_after,
            clock_offset=clock_offset,
            env=env,
        )
        self.workers.append(worker)
        return worker

    def close(self) -> None:
        for worker in self.workers:
            worker.close()

    def logs(self) -> str:
        return "\n".join(f"--- {worker.log_path.name} (pid {worker.pid})\n{worker.log}" for worker in self.workers)


@dataclass(frozen=True)
class JobTally:
    """How the enqueued jobs fared, from the handlers' `done` records."""

    enqueued: int
    completed: int
    lost: int
    duplicated: int
    """Runs beyond the first, summed over jobs (at-least-once delivery allows them; the tests report them)."""
    unexpected: int
    """Completed job ids that were never enqueued by the test (must be 0)."""

    def figures(self) -> dict[str, int]:
        return {
            "enqueued": self.enqueued,
            "completed": self.completed,
            "lost": self.lost,
            "duplicated": self.duplicated,
        }


def runs_by_job(client: redis.Redis, namespace: str, record: str = "done") -> Counter[str]:
    """Job id → how many runs reached `record` (`started` or `done`)."""
    return Counter(text(job_id) for job_id in client.hvals(f"{namespace}:test:{record}"))


def wait_for_completed(client: redis.Redis, namespace: str, at_least: int, stalled_after: float = 30) -> None:
    """Until at least `at_least` distinct jobs have completed a run; fails only when none completes for
    `stalled_after` s (the tests prove that the jobs complete, not how fast a loaded machine runs them)."""
    wait_for_count(
        lambda: len(runs_by_job(client, namespace)), at_least, stalled_after, what=f"{at_least} jobs to complete"
    )


def tally(client: redis.Redis, namespace: str, enqueued_ids: Iterable[str]) -> JobTally:
    expected = set(enqueued_ids)
    runs = runs_by_job(client, namespace)
    completed = expected & set(runs)
    return JobTally(
        enqueued=len(expected),
        completed=len(completed),
        lost=len(expected - completed),
        duplicated=sum(runs[job_id] - 1 for job_id in completed),
        unexpected=len(set(runs) - expected),
    )


def leftovers(client: redis.Redis, namespace: str) -> list[str]:
    """Everything that says a job is still queued, running or counted as running; [] once the namespace is idle."""
    found = []
    for raw_key in sorted(client.scan_iter(match=f"{namespace}:jobs:*", count=1000)):
        key = text(raw_key)
        kind = text(client.type(raw_key))
        if key.endswith(":lock"):
            value = client.get(raw_key)
            if value not in (None, b"0"):
                found.append(f"{key}={value!r}")
        elif kind == "list" and client.llen(raw_key):
            found.append(f"{key} holds {client.llen(raw_key)}")
        elif kind in ("hash", "zset") and (key.endswith(":lock_info") or key.endswith(":leases")):
            size = client.hlen(raw_key) if kind == "hash" else client.zcard(raw_key)
            if size:
                found.append(f"{key} holds {size}")
    return found


def in_progress_ids(client: redis.Redis, namespace: str, job_name: str, pool_id: str) -> list[str]:
    """Ids of the jobs in one pool's in-progress list."""
    payloads = client.lrange(f"{namespace}:jobs:{job_name}:{pool_id}:inprogress", 0, -1)
    return [json.loads(payload)["id"] for payload in payloads]


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def seconds_since(start: float) -> float:
    return time.monotonic() - start
