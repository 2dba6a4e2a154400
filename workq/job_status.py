"""A job's status by id (`Client.job_status`) and waiting for its result (`Client.wait_result`).

A job's status is where it is now (found by `job_lookup`), else what its result record (`result:<id>`) says: a run
of a name registered with `keep_result` leaves "done" there, `Client.cancel` leaves "cancelled"."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from workq.connection import RedisClient, reply_text
from workq.errors import JobFailed, JobNotFound
from workq.job_lookup import CHUNK, Location, find_dead, find_job, matching
from workq.keys import Keys

logger = logging.getLogger("workq")

STATES = ("queued", "scheduled", "running", "retry", "dead", "done", "cancelled")
FINAL_STATES = ("done", "dead", "cancelled")
REMOVED_FIELD = "removed"
"""Set in the "cancelled" record `Client.cancel` writes for a waiting job it removed: that job never comes back, so
the record is final. The "cancelled" record of a run (the job filed dead) is not: the dead job can be retried."""
FIRST_POLL = 0.05
MAX_POLL = 1.0
POLL_GROWTH = 1.5
"""wait_result reads the result record (one GET) and the jobs that died since it began, at intervals growing from
FIRST_POLL to MAX_POLL seconds."""
FULL_CHECK_EVERY = 10.0
"""wait_result looks for the job everywhere (paging through queues) only this often, or 20 times as long as the
last look took, to notice a job that vanished: deleted, or finished without `keep_result`."""
DEATH_MARGIN = 60
"""Deaths are looked for from this many seconds before the wait began (hosts' clocks may disagree)."""


@dataclass(frozen=True)
class JobStatus:
    """Where a job is, as far as Redis records it. `updated_at` (epoch s) is when it entered that state: enqueued
    (queued, scheduled), its run began (running; the enqueue time until its worker's observation is written),
    failed (retry), died (dead), or its record was written (done, cancelled)."""

    job_id: str
    job_name: str
    state: str
    fails: int
    last_err: str
    result: Any
    """The handler's return value, for a job in state "done"; None otherwise."""
    updated_at: int


def job_status(client: RedisClient, keys: Keys, job_id: str) -> JobStatus | None:
    """The status of `job_id`, or None when Redis knows nothing of it. A final record (done, or a waiting job
    removed by `cancel`) answers at once. A run's "cancelled" record stands while the job is still in the dead set
    (looked for there first); any other record is older than the job's current place (a dead job may have been
    retried since)."""
    record = read_result(client, keys, job_id)
    if record is not None and record.final:
        return record.status
    cancelled_run = record is not None and record.status.state == "cancelled"
    found = (find_dead(client, keys, job_id) if cancelled_run else None) or find_job(client, keys, job_id)
    if found is None:
        # A run's ack takes the job out of progress and writes its record in one step: a job that finished while
        # its places were read has a record newer than the one read first.
        record = read_result(client, keys, job_id)
        return None if record is None else record.status
    if record is not None and cancelled_run and found.state == "dead":
        return record.status
    return _status_at(client, keys, found)


@dataclass(frozen=True)
class Record:
    """A result record as read: the status it gives, and whether no later event can outdate it."""

    status: JobStatus
    final: bool


def read_result(client: RedisClient, keys: Keys, job_id: str) -> Record | None:
    """The result record of `job_id`, or None when there is none (or it is unreadable: logged)."""
    raw = client.get(keys.result(job_id))
    if raw is None:
        return None
    try:
        record = json.loads(cast(bytes, raw))
    except (ValueError, RecursionError) as exc:
        logger.warning("result record of job %s is not JSON (%s); ignoring it", job_id, exc)
        return None
    if not isinstance(record, dict) or record.get("state") not in STATES:
        logger.warning("result record of job %s has no known state; ignoring it: %.200r", job_id, raw)
        return None
    status = JobStatus(
        job_id=job_id,
        job_name=str(record.get("job_name") or ""),
        state=record["state"],
        fails=_whole(record.get("fails")),
        last_err=str(record.get("last_err") or ""),
        result=record.get("result"),
        updated_at=_whole(record.get("updated_at")),
    )
    return Record(status, status.state == "done" or (status.state == "cancelled" and record.get(REMOVED_FIELD) is True))


def wait_result(
    client: RedisClient,
    keys: Keys,
    job_id: str,
    timeout: float,
    *,
    now: float,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Any:
    """The result of `job_id` once it is done; `JobFailed` once it is dead or cancelled; `TimeoutError` after
    `timeout` seconds; `JobNotFound` when it is nowhere (never enqueued, deleted, or finished without a result).
    `now` is the time on the clock that dates deaths (Redis's, unless one was injected)."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
        raise ValueError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
    deadline = monotonic() + timeout
    since = int(now) - DEATH_MARGIN
    status, full_every = _timed_status(client, keys, job_id, monotonic)
    next_full_check = monotonic() + full_every
    interval = FIRST_POLL
    while True:
        if status is None:
            raise JobNotFound(
                f"no job {job_id}: it was never enqueued, was deleted, or finished without a kept result "
                "(register its name with keep_result=SECONDS to wait for its result)"
            )
        if status.state == "done":
            return status.result
        if status.state in FINAL_STATES:
            raise JobFailed(job_id, status.last_err)
        remaining = deadline - monotonic()
        if remaining <= 0:
            raise TimeoutError(f"job {job_id} is still {status.state} after {timeout:g} s")
        sleep(min(interval, remaining))
        interval = min(interval * POLL_GROWTH, MAX_POLL)
        news = _news(client, keys, job_id, since)
        if news is not None:
            status = news
        elif monotonic() >= next_full_check:
            status, full_every = _timed_status(client, keys, job_id, monotonic)
            next_full_check = monotonic() + full_every


def _timed_status(
    client: RedisClient, keys: Keys, job_id: str, monotonic: Callable[[], float]
) -> tuple[JobStatus | None, float]:
    """The job's status and how long to wait before looking for it everywhere again."""
    began = monotonic()
    status = job_status(client, keys, job_id)
    return status, max(FULL_CHECK_EVERY, 20 * (monotonic() - began))


def _news(client: RedisClient, keys: Keys, job_id: str, since: int) -> JobStatus | None:
    """A final status found cheaply: the result record, or the job among those that died since `since`."""
    record = read_result(client, keys, job_id)
    if record is not None and record.status.updated_at >= since:  # an older one was there when the wait began
        return record.status
    offset = 0
    while True:
        page = cast(
            list[tuple[bytes, float]],
            client.zrangebyscore(keys.dead, since, "+inf", start=offset, num=CHUNK, withscores=True),
        )
        members = [member for member, _ in page]
        for index, member, job in matching(members, job_id):
            return _status_at(client, keys, Location("dead", keys.dead, member, job, score=page[index][1]))
        if len(page) < CHUNK:
            return None
        offset += len(page)


def _status_at(client: RedisClient, keys: Keys, found: Location) -> JobStatus:
    job = found.job
    if found.state in ("scheduled", "queued"):
        updated_at = job.enqueued_at
    elif found.state == "running":
        updated_at = _run_started_at(client, keys, found.pool_id, job.id) or job.enqueued_at
    elif found.state == "retry":
        updated_at = job.failed_at
    else:
        updated_at = int(found.score) if math.isfinite(found.score) else job.failed_at
    return JobStatus(job.id, job.name, found.state, job.fails, job.last_err, None, updated_at)


def _run_started_at(client: RedisClient, keys: Keys, pool_id: str, job_id: str) -> int:
    """When the pool's worker running `job_id` started it, from its observation (0 when not written yet)."""
    worker_ids = reply_text(client.hget(keys.worker_pool(pool_id), "worker_ids") or b"").split(",")
    pipe = client.pipeline(transaction=False)
    for worker_id in filter(None, worker_ids):
        pipe.hmget(keys.worker(worker_id), ["job_id", "started_at"])
    for running, started_at in pipe.execute():
        if running is not None and reply_text(running) == job_id:
            return _whole(started_at)
    return 0


def _whole(value: object) -> int:
    """A count or time from a record as a whole number >= 0 (0 for anything else)."""
    try:
        number = float(reply_text(value) if isinstance(value, bytes) else cast(Any, value))
    except (TypeError, ValueError):
        return 0
    return int(number) if math.isfinite(number) and number >= 0 else 0
