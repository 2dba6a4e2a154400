"""workq: Redis-backed background jobs, wire-compatible with gocraft/work."""

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
