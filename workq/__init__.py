"""workq: Redis-backed background jobs, wire-compatible with gocraft/work.

The names below are imported on first use (PEP 562), not with the package: importing a submodule alone — the pytest
plugin every pytest run loads where workq is installed, `workq.errors` — does not pull in redis-py.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workq.client import Client, JobStats, Queue, SetSizes, WorkerObservation, WorkerPoolHeartbeat
    from workq.enqueuer import Enqueuer
    from workq.errors import (
        ArgError,
        ArgsMismatch,
        Cancelled,
        ConnectionFailed,
        JobFailed,
        JobNotFound,
        JobTimeout,
        MalformedJob,
        MaybeEnqueued,
        NotDeleted,
        NotRetried,
        Retry,
        WorkqError,
    )
    from workq.handler import JobHandler, JobOptions
    from workq.job import DeadJob, Job, RetryJob, ScheduledJob
    from workq.job_status import JobStatus
    from workq.task import Task
    from workq.worker_pool import WorkerPool

_HOMES = {
    "ArgError": "workq.errors",
    "ArgsMismatch": "workq.errors",
    "Cancelled": "workq.errors",
    "Client": "workq.client",
    "ConnectionFailed": "workq.errors",
    "DeadJob": "workq.job",
    "Enqueuer": "workq.enqueuer",
    "Job": "workq.job",
    "JobFailed": "workq.errors",
    "JobHandler": "workq.handler",
    "JobNotFound": "workq.errors",
    "JobOptions": "workq.handler",
    "JobStats": "workq.client",
    "JobStatus": "workq.job_status",
    "JobTimeout": "workq.errors",
    "MalformedJob": "workq.errors",
    "MaybeEnqueued": "workq.errors",
    "NotDeleted": "workq.errors",
    "NotRetried": "workq.errors",
    "Queue": "workq.client",
    "Retry": "workq.errors",
    "RetryJob": "workq.job",
    "ScheduledJob": "workq.job",
    "SetSizes": "workq.client",
    "Task": "workq.task",
    "WorkerObservation": "workq.client",
    "WorkerPool": "workq.worker_pool",
    "WorkerPoolHeartbeat": "workq.client",
    "WorkqError": "workq.errors",
}
__all__ = [
    "ArgError",
    "ArgsMismatch",
    "Cancelled",
    "Client",
    "ConnectionFailed",
    "DeadJob",
    "Enqueuer",
    "Job",
    "JobFailed",
    "JobHandler",
    "JobNotFound",
    "JobOptions",
    "JobStats",
    "JobStatus",
    "JobTimeout",
    "MalformedJob",
    "MaybeEnqueued",
    "NotDeleted",
    "NotRetried",
    "Queue",
    "Retry",
    "RetryJob",
    "ScheduledJob",
    "SetSizes",
    "Task",
    "WorkerObservation",
    "WorkerPool",
    "WorkerPoolHeartbeat",
    "WorkqError",
]


def __getattr__(name: str) -> object:
    """A public name, imported from its module on first use (then cached here); else a submodule (`workq.job`)."""
    home = _HOMES.get(name)
    if home is None:
        try:
            return importlib.import_module(f"workq.{name}")
        except ModuleNotFoundError:
            raise AttributeError(f"module 'workq' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
