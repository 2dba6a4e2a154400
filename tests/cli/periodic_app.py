"""The pool several `workq worker periodic_app:pool` processes run in the multi-process cron test."""

from __future__ import annotations

from workq import Job, WorkerPool

pool = WorkerPool(concurrency=2)


@pool.periodic("* * * * * *", name="tick")
def tick(job: Job) -> None:
    """Records which tick ran; the job id is `periodic:tick:<spec>:<fire time>`."""
    pool.redis.rpush(f"{pool.namespace}:test:ticks", job.id)
