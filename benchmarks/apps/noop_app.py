"""The job of `benchmarks.observability_cost`: a handler that does nothing, so a worker's own costs per job show.
Imports only `workq`, so the same file runs against older trees of it."""

from __future__ import annotations

from workq import Job, WorkerPool

pool = WorkerPool(concurrency=10)


@pool.job("noop", max_fails=1)
def noop(job: Job) -> None:
    """Nothing: the run is counted by the ack script's daily stats."""
