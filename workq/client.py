"""Client: inspection and repair of a namespace — queues, live pools and what their workers run, pausing.

Each concept lives in its own module and `Client` gathers them: `queue_views` (queues and daily counts),
`set_pages` and `set_repairs` (the scheduled, retry and dead sets), `pool_views` (live pools and their workers),
`job_control` and `job_status` (a job by its id, wherever it is)."""

from __future__ import annotations

from typing import Any

from workq import job_control, job_status
from workq.connection import translated_faults
from workq.entry_checks import LAST_EPOCH, PAGE_SIZE, PROBLEM_FIELD
from workq.job import check_job_name
from workq.job_status import JobStatus
from workq.pool_views import PoolViews, WorkerObservation, WorkerPoolHeartbeat
from workq.queue_views import JobStats, Queue, QueueViews, SetSizes
from workq.schedules import Schedule, read_schedules
from workq.scripts import Scripts
from workq.set_pages import SetPages
from workq.set_repairs import SetRepairs

__all__ = [
    "LAST_EPOCH",
    "PAGE_SIZE",
    "PROBLEM_FIELD",
    "Client",
    "JobStats",
    "Queue",
    "SetSizes",
    "WorkerObservation",
    "WorkerPoolHeartbeat",
]


class Client(QueueViews, SetPages, SetRepairs, PoolViews):
    """Read and repair one namespace. Safe to use while pools run: every change is a single atomic command or script."""

    def pause(self, job_name: str) -> None:
        """Every pool stops fetching `job_name` (running jobs finish) until `unpause`."""
        with translated_faults(self.redis):
            self.redis.set(self.keys.paused(check_job_name(job_name)), "1")

    def unpause(self, job_name: str) -> None:
        with translated_faults(self.redis):
            self.redis.delete(self.keys.paused(check_job_name(job_name)))

    def is_paused(self, job_name: str) -> bool:
        with translated_faults(self.redis):
            return bool(self.redis.exists(self.keys.paused(check_job_name(job_name))))

    def ping(self) -> None:
        """Raise `ConnectionFailed`, naming the server, unless Redis answers."""
        with translated_faults(self.redis):
            self.redis.ping()

    def schedules(self) -> list[Schedule]:
        """The cron schedules live pools registered, with their next fire times and last run, and those no live
        pool registers any more whose ticks are still ahead (`Schedule.registered` False)."""
        with translated_faults(self.redis):
            return read_schedules(self.redis, self.keys, self._clock())

    # --- job control: by id, wherever the job is (see workq.job_control) --------------------------------------

    def cancel(self, job_id: str) -> str:
        """Cancel job `job_id` wherever it is; returns where it was. "queued", "scheduled", "retry", "dead": removed
        (it never runs) and recorded as "cancelled" for a day. "running": its pool is asked to interrupt it
        (`workq.Cancelled` raised in the handler), after which it is filed dead, "cancelled", never retried.
        `JobNotFound` when no job has that id (or it already finished). Queues are read a page at a time."""
        with translated_faults(self.redis):
            return job_control.cancel(self.redis, Scripts.register(self.redis), self.keys, job_id, int(self._clock()))

    def delete_queued_job(self, job_name: str, job_id: str) -> None:
        """Delete one queued job (releasing its unique lock if it is still its own); `NotDeleted` if absent."""
        name = check_job_name(job_name)
        with translated_faults(self.redis):
            job_control.delete_queued_job(self.redis, Scripts.register(self.redis), self.keys, name, job_id)

    def purge(self, job_name: str) -> int:
        """Delete every job queued for `job_name` (not running ones), releasing unique locks; returns how many.
        Never blocks Redis: the queue is renamed away at once and freed in the background (UNLINK)."""
        name = check_job_name(job_name)
        with translated_faults(self.redis):
            return job_control.purge(self.redis, Scripts.register(self.redis), self.keys, name)

    def job_status(self, job_id: str) -> JobStatus | None:
        """Where job `job_id` is (`JobStatus.state`: queued scheduled running retry dead done cancelled), or None
        when Redis knows nothing of it. "done" exists for names registered with `keep_result`."""
        with translated_faults(self.redis):
            return job_status.job_status(self.redis, self.keys, job_id)

    def wait_result(self, job_id: str, timeout: float) -> Any:
        """Block until job `job_id` is done and return its result (names registered with `keep_result`).
        Raises `JobFailed` (with `last_err`) once it is dead or cancelled, `TimeoutError` after `timeout` seconds,
        `JobNotFound` when it is nowhere. Polls one key at intervals growing to a second, never in a tight loop."""
        with translated_faults(self.redis):
            now = self._time.server_now(self.redis)
            return job_status.wait_result(self.redis, self.keys, job_id, timeout, now=now)
