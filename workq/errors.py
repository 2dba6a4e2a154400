"""The exception hierarchy: everything workq raises on purpose derives from `WorkqError`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workq.job import Job


class WorkqError(Exception):
    """Base class of workq's own errors."""


class ConnectionFailed(WorkqError):
    """Redis could not be reached or dropped the connection; the operation may be retried."""


class MaybeEnqueued(ConnectionFailed):
    """An enqueue reached Redis but its reply was lost (a time-out, a dropped connection): the job may or may not
    be queued. workq never sends it again; look for `job_ids` before enqueuing them again. (A plain
    `ConnectionFailed` from an enqueue means nothing was queued.)"""

    def __init__(self, message: str, jobs: Sequence[Job] = ()) -> None:
        super().__init__(message)
        self.jobs = list(jobs)
        self.job_ids = [job.id for job in self.jobs]


class MalformedJob(WorkqError, ValueError):
    """Bytes found where a job should be are not a valid job (bad JSON, missing or mistyped fields)."""


class ArgError(WorkqError, ValueError):
    """A job argument is missing or of the wrong type (returned by `Job.arg_error()`)."""


class ArgsMismatch(ArgError):
    """A job's args do not fit the parameters of its typed task (`@pool.task`): a missing, unknown or mistyped
    argument. The job is filed dead at once (or discarded with `skip_dead`): retrying cannot fix its args."""


class NotDeleted(WorkqError):
    """Nothing matched the job to delete."""


class NotRetried(WorkqError):
    """Nothing matched the job to retry."""


class JobNotFound(WorkqError):
    """No job with that id is queued, scheduled, retrying, dead, running or kept as a result."""


class JobFailed(WorkqError):
    """`Client.wait_result`: the job ended dead or cancelled; `last_err` says why."""

    def __init__(self, job_id: str, last_err: str) -> None:
        super().__init__(f"job {job_id} failed: {last_err}")
        self.job_id = job_id
        self.last_err = last_err


class JobTimeout(Exception):
    """Raised inside a handler's thread when its run passes the job's `timeout` (a `BaseException` would skip
    user `except Exception` clean-up; this does not, and the run still counts as failed, "timed out")."""


class Cancelled(Exception):
    """Raised inside a handler's thread when `Client.cancel` stops the run; the job is filed dead, "cancelled"."""


class Retry(Exception):
    """Raise from a handler to run the job again in `in_seconds` without counting a failure."""

    def __init__(self, in_seconds: float = 0) -> None:
        if not math.isfinite(in_seconds) or in_seconds < 0:
            raise ValueError(f"Retry(in_seconds={in_seconds}): the delay must be a finite number of seconds >= 0")
        super().__init__(f"retry in {in_seconds} s")
        self.in_seconds = in_seconds
