"""The pool `workq worker worker_app:pool` runs in the CLI tests: handlers report through Redis keys."""

from __future__ import annotations

import os
import time

from workq import Job, WorkerPool

pool = WorkerPool(concurrency=2)


def _marker(job: Job, what: str) -> str:
    return f"{pool.namespace}:test:{what}:{job.id}"


@pool.job("blocking")
def blocking(job: Job) -> None:
    """Marks itself started, waits until the test releases it (or 30 s pass), then marks itself finished."""
    pool.redis.set(_marker(job, "started"), 1)
    deadline = time.monotonic() + 30
    while not pool.redis.exists(f"{pool.namespace}:test:release") and time.monotonic() < deadline:
        time.sleep(0.01)
    pool.redis.incr(_marker(job, "finished"))


@pool.job("quick")
def quick(job: Job) -> None:
    pool.redis.incr(_marker(job, "finished"))


@pool.job("stuck_in_c", timeout=1, max_fails=1)
def stuck_in_c(job: Job) -> None:
    """A C call that ignores its time limit (time.sleep gives no bytecode boundary until it returns)."""
    pool.redis.set(_marker(job, "started"), os.getpid())
    time.sleep(600)
