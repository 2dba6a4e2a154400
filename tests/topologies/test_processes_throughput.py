"""A measurement, not a test of behaviour: no-op jobs per second through `workq worker --processes N` against the
shared Redis, for N = 1 and 2. Runs only with WORKQ_MEASURE=1 (it takes tens of seconds and its figures depend on
the machine); the figures are printed and repeated in the session summary.

    WORKQ_MEASURE=1 .venv/bin/python -m pytest tests/topologies/test_processes_throughput.py -s
"""

from __future__ import annotations

import os
import time

import pytest

from support import wait_until
from topologies.conftest import WorkerStarter
from topologies.servers import report
from workq import Client, Enqueuer

pytestmark = pytest.mark.skipif(
    os.environ.get("WORKQ_MEASURE") != "1", reason="a throughput measurement: run with WORKQ_MEASURE=1"
)

JOBS = 20_000
CONCURRENCY = 10


@pytest.mark.parametrize("processes", [1, 2])
def test_noop_throughput(processes: int, redis_url: str, namespace: str, start_worker: WorkerStarter) -> None:
    client = Client(namespace, redis_url)
    worker = start_worker(
        "topologies.app:make_noop_pool",
        "--redis-url", redis_url, "--namespace", namespace, "--processes", str(processes),
        "--concurrency", str(CONCURRENCY), "--log-level", "WARNING",
    )  # fmt: skip
    wait_until(
        lambda: len(client.worker_pool_heartbeats()) == processes, timeout=30, what=f"{processes} pool processes"
    )

    def processed() -> int:
        return sum(stats.processed for stats in client.job_stats() if stats.job_name == "noop")

    samples: list[tuple[float, int]] = []

    def sampled_until_done() -> bool:
        samples.append((time.monotonic(), processed()))
        return samples[-1][1] >= JOBS

    started = time.monotonic()
    Enqueuer(namespace, redis_url).enqueue_many("noop", [{} for _ in range(JOBS)])
    enqueued = time.monotonic() - started
    wait_until(sampled_until_done, timeout=600, interval=0.05, what=f"{JOBS} jobs to run")
    total = samples[-1][0] - started
    (t10, n10), (t90, n90) = (next(s for s in samples if s[1] >= JOBS * share) for share in (0.1, 0.9))
    assert worker.stop(timeout=60) == 0, worker.log
    report(
        f"--processes {processes}",
        jobs=JOBS,
        concurrency=CONCURRENCY,
        enqueue_s=enqueued,
        total_s=total,
        jobs_per_s=JOBS / total,
        steady_jobs_per_s=(n90 - n10) / (t90 - t10),
    )
