"""The benchmark job for `workq worker benchmarks.apps.workq_app:pool` (namespace and Redis come from the flags)."""

from __future__ import annotations

from benchmarks.effect import record_run
from workq import Job, WorkerPool

JOB_NAME = "noop"

pool = WorkerPool(concurrency=10)


@pool.job(JOB_NAME, max_fails=1)
def noop(job: Job) -> None:
    """`{"n": number}`, plus `"t": enqueue time` in latency runs."""
    stamp = job.args.get("t")
    record_run(job.arg_int("n"), float(stamp) if stamp is not None else None)
