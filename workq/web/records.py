"""What the dashboard shows, read through the Client once per request: the API returns these records as JSON and
the pages render them, so the two never disagree."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from workq.client import Client
from workq.entry_checks import listed_record, other_fields
from workq.job import FIRST_ENQUEUED_FIELD, DeadJob, Job
from workq.pool_views import WorkerObservation, WorkerPoolHeartbeat
from workq.queue_rows import QueueRow, failure_rate, queue_rows

STALE_HEARTBEAT = 60
"""Seconds without a heartbeat after which a pool is shown as late (WorkerPool's default `dead_after`)."""
RECENT_DEAD = 5


@dataclass(frozen=True)
class JobSet:
    """A list of jobs from one sorted set: its page (endpoint `pages.<slug>`), how it is titled, which score each
    job carries and which set it is in (`set_name`: its delete action is `api.delete_<set_name>_job`)."""

    slug: str
    title: str
    score_field: str
    score_label: str
    read: Callable[[Client, int], tuple[Sequence[Job], int]]
    set_name: str


JOB_SETS = {
    "scheduled": JobSet(
        "scheduled",
        "Scheduled",
        "run_at",
        "Runs",
        lambda client, page: client.scheduled_jobs(page, kind="one_off"),
        "scheduled",
    ),
    "cron_ticks": JobSet(
        "cron_ticks",
        "Cron ticks",
        "run_at",
        "Fires",
        lambda client, page: client.scheduled_jobs(page, kind="cron"),
        "scheduled",
    ),
    "retry": JobSet("retry", "Retrying", "retry_at", "Retries", lambda client, page: client.retry_jobs(page), "retry"),
    "dead": JobSet("dead", "Dead", "died_at", "Died", lambda client, page: client.dead_jobs(page), "dead"),
}


@dataclass(frozen=True)
class PoolRow:
    """A live pool's heartbeat with how many of its workers are busy and how long since it last beat."""

    heartbeat: WorkerPoolHeartbeat
    busy: int
    heartbeat_age: int

    @property
    def late(self) -> bool:
        return self.heartbeat_age > STALE_HEARTBEAT


@dataclass(frozen=True)
class Counts:
    """Sizes of the sorted sets, for the navigation and the overview."""

    scheduled: int
    retry: int
    dead: int


@dataclass(frozen=True)
class Overview:
    """Everything the overview page and /api/stats show."""

    day: str
    queues: list[QueueRow]
    pools: list[PoolRow]
    busy_workers: int
    counts: Counts
    recent_dead: Sequence[DeadJob]

    @property
    def queued(self) -> int:
        return sum(queue.count for queue in self.queues)

    @property
    def processed(self) -> int:
        return sum(queue.processed for queue in self.queues)

    @property
    def failed(self) -> int:
        return sum(queue.failed for queue in self.queues)

    @property
    def error_rate(self) -> float | None:
        return failure_rate(self.failed, self.processed)

    @property
    def concurrency(self) -> int:
        return sum(pool.heartbeat.concurrency for pool in self.pools)


def busy_workers(client: Client) -> list[WorkerObservation]:
    """Workers running a job, longest-running first."""
    busy = [observation for observation in client.worker_observations() if observation.is_busy]
    return sorted(busy, key=lambda observation: (observation.started_at, observation.worker_id))


def pool_rows(client: Client, busy: Sequence[WorkerObservation], now: int) -> list[PoolRow]:
    busy_ids = {observation.worker_id for observation in busy}
    return [
        PoolRow(
            heartbeat=pool,
            busy=len(busy_ids.intersection(pool.worker_ids)),
            heartbeat_age=max(0, now - pool.heartbeat_at),
        )
        for pool in sorted(client.worker_pool_heartbeats(), key=lambda pool: (pool.host, pool.started_at))
    ]


def counts(client: Client) -> Counts:
    """The sizes of the three sets, in one round trip."""
    sizes = client.set_sizes()
    return Counts(scheduled=sizes.scheduled, retry=sizes.retry, dead=sizes.dead)


def overview(client: Client, now: int) -> Overview:
    stats = client.job_stats(now)
    busy = busy_workers(client)
    dead, _ = client.dead_jobs(1)
    return Overview(
        day=time.strftime("%Y-%m-%d", time.gmtime(now)),
        queues=queue_rows(client, stats),
        pools=pool_rows(client, busy, now),
        busy_workers=len(busy),
        counts=counts(client),
        recent_dead=dead[:RECENT_DEAD],
    )


def unshown_fields(job: Job) -> dict[str, Any]:
    """The other fields a page lists as such: those it does not already show in its own columns."""
    return {key: value for key, value in other_fields(job).items() if key != FIRST_ENQUEUED_FIELD}


def job_record(job: Job, score_field: str) -> dict[str, Any]:
    """A job as gocraft/work's web UI returns it: the score, then the wire fields (`t` is when it was enqueued),
    framed as `listed_record` frames it (others' fields first, `problem` last)."""
    fields: dict[str, Any] = {
        score_field: getattr(job, score_field),
        "name": job.name,
        "id": job.id,
        "t": job.enqueued_at,
        "args": None if job.args_null and not job.args else job.args,
        "unique": job.unique,
        "fails": job.fails,
        "err": job.last_err,
        "failed_at": job.failed_at,
    }
    if job.unique_key:
        fields["unique_key"] = job.unique_key
    return listed_record(job, fields)
