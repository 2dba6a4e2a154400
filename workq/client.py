"""Client: inspection and repair of a namespace — queues, live pools and what their workers run, pausing."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from workq import job_control, job_status, unique
from workq.clock import as_clock
from workq.connection import (
    RedisClient,
    check_namespace_fits,
    reply_text,
    resolve_namespace,
    resolve_redis,
    translated_faults,
)
from workq.errors import NotDeleted, NotRetried
from workq.job import DeadJob, Job, RetryJob, ScheduledJob, check_job_name
from workq.job_lookup import MALFORMED_PREFIX, missing_id
from workq.job_lookup import decode_member as _decode
from workq.job_status import JobStatus
from workq.keys import Keys
from workq.scheduled_split import ScheduledKind, page_of
from workq.schedules import Schedule, read_schedules
from workq.scripts import Scripts

PAGE_SIZE = 20
BATCH = 100
PROBLEM_FIELD = "workq_problem"
"""The `extra` key of a listed job whose entry in Redis is wrong (a score of inf, a time past year 9999, negative
fails, bytes that are not a job): what is wrong, for the CLI and dashboard to show. Only views carry it."""
LAST_EPOCH = 253_402_300_799
"""9999-12-31 23:59:59 UTC: a time after it (or before 1970) in Redis is a corrupt value, not a moment to show."""


@dataclass(frozen=True)
class Queue:
    job_name: str
    count: int
    latency: int
    """Seconds since the next job to run was enqueued (0 when empty)."""
    paused: bool = False
    problem: str = ""
    """What is wrong with what Redis holds for this queue (its next job unreadable), or "" when nothing is."""


@dataclass(frozen=True)
class SetSizes:
    """How many jobs wait in each sorted set."""

    scheduled: int
    retry: int
    dead: int


@dataclass(frozen=True)
class JobStats:
    """Outcomes of one job name on one UTC day (`day` as YYYY-MM-DD), counted by the workers."""

    job_name: str
    day: str
    processed: int
    failed: int
    problem: str = ""
    """A counter that is not a whole number >= 0 reads as 0 and is named here."""


@dataclass(frozen=True)
class WorkerPoolHeartbeat:
    worker_pool_id: str
    started_at: int
    heartbeat_at: int
    job_names: list[str]
    concurrency: int
    host: str
    pid: int
    worker_ids: list[str]
    problem: str = ""
    """Fields of the heartbeat hash that are not whole numbers (read as 0) or not times, or "" when all are."""


@dataclass(frozen=True)
class WorkerObservation:
    worker_id: str
    is_busy: bool
    job_name: str
    job_id: str
    started_at: int
    args_json: str
    checkin: str
    checkin_at: int
    problem: str = ""
    """Fields of the observation hash that are not times (read as 0), or "" when all are."""
    attempt: int = 0
    """Which run of the job this is (its failed runs + 1); 0 when the pool did not say (gocraft/work)."""
    enqueued_at: int = 0
    """When the job was first enqueued (before any retry reset its `t`); 0 when the pool did not say."""


class Client:
    """Read and repair one namespace. Safe to use while pools run: every change is a single atomic command or script."""

    def __init__(
        self,
        namespace: str | None = None,
        redis: RedisClient | str | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.namespace = resolve_namespace(namespace)
        check_namespace_fits(redis, self.namespace)
        self.redis = resolve_redis(redis)
        self.keys = Keys(self.namespace)
        self._time = as_clock(clock)
        self._clock = self._time.wall  # times shown to people and filed on retried jobs

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

    # --- sorted sets: scheduled, retry, dead --------------------------------------------------------------------

    def scheduled_jobs(self, page: int = 1, *, kind: ScheduledKind = "all") -> tuple[list[ScheduledJob], int]:
        """A page of scheduled jobs, soonest first, and how many there are in all. `kind="one_off"` leaves the
        ticks of cron schedules out, `kind="cron"` lists only them (see `workq.scheduled_split`)."""
        if kind == "all":
            return self._page(self.keys.scheduled, ScheduledJob, "run_at", page, newest_first=False)
        if kind not in ("one_off", "cron"):
            raise ValueError(f"kind must be 'all', 'one_off' or 'cron', got {kind!r}")
        _check_page(page)
        with translated_faults(self.redis):
            entries, total = page_of(self.redis, self.keys.scheduled, page, PAGE_SIZE, kind)
        return [_listed(member, score, ScheduledJob, "run_at") for member, score in entries], total

    def schedules(self) -> list[Schedule]:
        """The cron schedules live pools registered, with their next fire times and last run, and those no live
        pool registers any more whose ticks are still ahead (`Schedule.registered` False)."""
        with translated_faults(self.redis):
            return read_schedules(self.redis, self.keys, self._clock())

    def retry_jobs(self, page: int = 1) -> tuple[list[RetryJob], int]:
        """A page of jobs waiting to retry, next retry first, and how many there are in all."""
        return self._page(self.keys.retry, RetryJob, "retry_at", page, newest_first=False)

    def dead_jobs(self, page: int = 1) -> tuple[list[DeadJob], int]:
        """A page of dead jobs, most recently died first, and how many there are in all."""
        return self._page(self.keys.dead, DeadJob, "died_at", page, newest_first=True)

    def _page(
        self, zset: str, view: type[_View], score_field: str, page: int, *, newest_first: bool
    ) -> tuple[list[_View], int]:
        _check_page(page)
        start = (page - 1) * PAGE_SIZE
        with translated_faults(self.redis):
            pipe = self.redis.pipeline(transaction=False)
            pipe.zrange(zset, start, start + PAGE_SIZE - 1, desc=newest_first, withscores=True)
            pipe.zcard(zset)
            members, total = pipe.execute()
        jobs = [_listed(member, score, view, score_field) for member, score in members]
        return jobs, int(total)

    # A job in a sorted set is named by its id and its score as the views show it (`run_at`, `retry_at`,
    # `died_at`) or its exact score in Redis: see `_score_ranges`.

    def delete_scheduled_job(self, scheduled_for: float, job_id: str) -> None:
        """Delete one scheduled job (and release its unique lock if the lock is still its own: see
        `workq.unique`); `NotDeleted` if it is not there."""
        job = self._remove(self.keys.scheduled, scheduled_for, job_id)
        if job.unique:
            with translated_faults(self.redis):
                unique.claim(self.redis, Scripts.register(self.redis), self.keys, job)

    def delete_retry_job(self, retry_at: float, job_id: str) -> None:
        self._remove(self.keys.retry, retry_at, job_id)

    def delete_dead_job(self, died_at: float, job_id: str) -> None:
        self._remove(self.keys.dead, died_at, job_id)

    def delete_all_dead_jobs(self) -> int:
        """Empty the dead queue; returns how many jobs were deleted."""
        with translated_faults(self.redis):
            pipe = self.redis.pipeline(transaction=True)
            pipe.zcard(self.keys.dead)
            pipe.delete(self.keys.dead)
            count, _ = pipe.execute()
        return int(count)

    def retry_dead_job(self, died_at: float, job_id: str) -> None:
        """Put one dead job back on its queue with its failures cleared; `NotRetried` if it is not there."""
        member, job = self._find(self.keys.dead, died_at, job_id, NotRetried)
        if job.id.startswith("malformed-"):
            raise NotRetried(f"dead job {job_id} is not a valid job and cannot run; delete it instead")
        try:
            check_job_name(job.name)
        except ValueError as exc:
            raise NotRetried(f"dead job {job_id} cannot go back to a queue: {exc}; delete it instead") from None
        if not self._move_dead([(member, job)]):
            raise NotRetried(f"dead job {job_id} (died at {died_at}) was taken meanwhile, or its queue is not a list")

    def retry_all_dead_jobs(self) -> int:
        return self.retry_dead_jobs()

    def retry_dead_jobs(
        self, job_name: str | None = None, limit: int | None = None, *, reason: str | None = None
    ) -> int:
        """Requeue up to `limit` dead jobs (oldest deaths first), of `job_name` only when given (beanstalkd's
        kick), and only those whose `err` contains `reason` when given (e.g. "unknown job": what gocraft/work's
        requeuer dead-letters). Returns how many were requeued; members that are not valid jobs stay dead."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be an int >= 0 or None, got {limit!r}")
        if reason is not None and (not isinstance(reason, str) or not reason):
            raise ValueError(f"reason must be a non-empty string or None, got {reason!r}")
        moved, start = 0, 0
        while limit is None or moved < limit:
            with translated_faults(self.redis):
                members = cast(list[bytes], self.redis.zrange(self.keys.dead, start, start + BATCH - 1))
            if not members:
                break
            chosen = [(member, job) for member in members if _wanted(job := _decode(member), job_name, reason)]
            if limit is not None:
                chosen = chosen[: limit - moved]
            moved_now = self._move_dead(chosen) if chosen else 0
            moved += moved_now
            start += len(members) - moved_now
        return moved

    def _move_dead(self, chosen: list[tuple[bytes, Job]]) -> int:
        """Requeue dead jobs whose names can name a queue (a payload's name becomes a key only once checked);
        a queue of the wrong type leaves its jobs dead. Returns how many moved."""
        now = int(self._clock())
        keys: list[str] = [self.keys.dead]
        args: list[bytes | str | int] = [now]
        for member, job in chosen:
            if not _names_a_queue(job):
                continue
            job.reenqueued(now)
            job.fails, job.last_err, job.failed_at = 0, "", 0
            keys.append(self.keys.queue(job.name))
            args.extend((member, job.to_json(), "queue"))
        if len(keys) == 1:
            return 0
        with translated_faults(self.redis):
            moved, _ = Scripts.register(self.redis).requeue(keys=keys, args=args)
        return int(moved)

    def _find(
        self, zset: str, score: float, job_id: str, missing: type[NotDeleted] | type[NotRetried]
    ) -> tuple[bytes, Job]:
        if isinstance(score, bool) or not isinstance(score, (int, float)) or math.isnan(score):
            raise TypeError(f"a score is a number (the job's run_at, retry_at or died_at), got {score!r}")
        with translated_faults(self.redis):
            pipe = self.redis.pipeline(transaction=False)
            for low, high in _score_ranges(score):
                pipe.zrangebyscore(zset, low, high, withscores=True)
            replies = cast(list[list[tuple[bytes, float]]], pipe.execute())
        for member, member_score in (entry for reply in replies for entry in reply):
            job = _decode(member)
            if job.id == job_id and score in (member_score, _shown_score(member_score)):
                return member, job
        raise missing(f"no job {job_id} at {score} in {zset}")

    def _remove(self, zset: str, score: float, job_id: str) -> Job:
        member, job = self._find(zset, score, job_id, NotDeleted)
        with translated_faults(self.redis):
            if not self.redis.zrem(zset, member):
                raise NotDeleted(f"job {job_id} at {score} in {zset} was taken meanwhile")
        return job

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

    # --- queues ------------------------------------------------------------------------------------------------

    def queued_jobs(self, job_name: str, page: int = 1) -> tuple[list[Job], int]:
        """A page of a queue's jobs, next to run first, and how many are queued."""
        _check_page(page)
        queue = self.keys.queue(check_job_name(job_name))
        start = (page - 1) * PAGE_SIZE
        with translated_faults(self.redis):
            pipe = self.redis.pipeline(transaction=False)
            pipe.lrange(queue, -(start + PAGE_SIZE), -(start + 1))
            pipe.llen(queue)
            members, total = pipe.execute()
        return [_marked(_decode(member), member, []) for member in reversed(members)], int(total)

    def peek(self, job_name: str, count: int = 10) -> list[Job]:
        """The next `count` jobs of a queue, next to run first, without taking them (beanstalkd's peek)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be an int >= 1, got {count!r}")
        with translated_faults(self.redis):
            members = cast(list[bytes], self.redis.lrange(self.keys.queue(check_job_name(job_name)), -count, -1))
        return [_decode(member) for member in reversed(members)]

    def job_stats(self, day: float | None = None) -> list[JobStats]:
        """Processed and failed counts of every known job name on the UTC day of epoch `day` (default today)."""
        at = self._clock() if day is None else day
        with translated_faults(self.redis):
            names = sorted(reply_text(name) for name in self.redis.smembers(self.keys.known_jobs))
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                pipe.hmget(self.keys.stats(name, at), ["processed", "failed"])
            counts = pipe.execute()
        label = time.strftime("%Y-%m-%d", time.gmtime(at))
        stats = []
        for name, (processed, failed) in zip(names, counts, strict=True):
            problems: list[str] = []
            counted = _int(processed, "processed", problems), _int(failed, "failed", problems)
            stats.append(JobStats(name, label, *counted, problem="; ".join(problems)))
        return stats

    def queues(self) -> list[Queue]:
        """Every known job name with its queue length and latency, sorted by name."""
        with translated_faults(self.redis):
            names = sorted(reply_text(name) for name in self.redis.smembers(self.keys.known_jobs))
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                pipe.llen(self.keys.queue(name))
                pipe.lindex(self.keys.queue(name), -1)
                pipe.exists(self.keys.paused(name))
            replies = pipe.execute()
        now = int(self._clock())
        queues = []
        for index, name in enumerate(names):
            count, oldest, paused = replies[3 * index : 3 * index + 3]
            latency, problem = _latency(oldest, now)
            queues.append(Queue(name, int(count), latency, bool(paused), problem))
        return queues

    def set_sizes(self) -> SetSizes:
        """The sizes of the scheduled, retry and dead sets, in one round trip."""
        with translated_faults(self.redis):
            pipe = self.redis.pipeline(transaction=False)
            for zset in (self.keys.scheduled, self.keys.retry, self.keys.dead):
                pipe.zcard(zset)
            scheduled, retry, dead = pipe.execute()
        return SetSizes(int(scheduled), int(retry), int(dead))

    def ping(self) -> None:
        """Raise `ConnectionFailed`, naming the server, unless Redis answers."""
        with translated_faults(self.redis):
            self.redis.ping()

    def worker_pool_heartbeats(self) -> list[WorkerPoolHeartbeat]:
        with translated_faults(self.redis):
            pool_ids = sorted(reply_text(pool_id) for pool_id in self.redis.smembers(self.keys.worker_pools))
            pipe = self.redis.pipeline(transaction=False)
            for pool_id in pool_ids:
                pipe.hgetall(self.keys.worker_pool(pool_id))
            hashes = pipe.execute()
        return [_heartbeat(pool_id, fields) for pool_id, fields in zip(pool_ids, hashes, strict=True) if fields]

    def serving_pools(self) -> dict[str, int]:
        """How many live pools (those in `worker_pools`) serve each job name; a name absent here has none, so its
        jobs wait until a pool that registers it starts (or were enqueued under a mistyped name)."""
        serving: dict[str, int] = {}
        for pool in self.worker_pool_heartbeats():
            for name in set(pool.job_names):
                serving[name] = serving.get(name, 0) + 1
        return serving

    def worker_observations(self) -> list[WorkerObservation]:
        """One observation per worker of every live pool; `is_busy` when it is running a job."""
        worker_ids = sorted({worker_id for pool in self.worker_pool_heartbeats() for worker_id in pool.worker_ids})
        with translated_faults(self.redis):
            pipe = self.redis.pipeline(transaction=False)
            for worker_id in worker_ids:
                pipe.hgetall(self.keys.worker(worker_id))
            hashes = pipe.execute()
        return [_observation(worker_id, fields) for worker_id, fields in zip(worker_ids, hashes, strict=True)]


_View = TypeVar("_View", ScheduledJob, RetryJob, DeadJob)
_Listed = TypeVar("_Listed", bound=Job)
_Fields = Mapping[bytes, bytes]


def _check_page(page: object) -> None:
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise ValueError(f"page must be an int >= 1, got {page!r}")


def _listed(member: bytes, score: float, view: type[_View], score_field: str) -> _View:
    """One entry of a sorted set as its view; whatever is wrong with it (the member or its score) is named under
    `PROBLEM_FIELD` instead of failing the whole page."""
    job = _decode(member)
    problems: list[str] = []
    return _marked(job.as_view(view, **{score_field: _time(score, score_field, problems)}), member, problems)


def _marked(job: _Listed, member: bytes, problems: list[str]) -> _Listed:
    """`job` (read from `member`) with what is wrong with it, and `problems` already found, under `PROBLEM_FIELD`."""
    if job.id.startswith(MALFORMED_PREFIX):
        problems.insert(0, job.last_err)
    if job.id == missing_id(member):
        problems.append(f"the job has no id (listed as {job.id})")
    _time(job.enqueued_at, "t", problems)
    _time(job.failed_at, "failed_at", problems)
    if job.fails < 0:
        problems.append(f"fails is negative ({job.fails})")
    if problems:
        job.extra = {**job.extra, PROBLEM_FIELD: "; ".join(problems)}
    return job


def _heartbeat(pool_id: str, fields: _Fields) -> WorkerPoolHeartbeat:
    problems: list[str] = []
    return WorkerPoolHeartbeat(
        worker_pool_id=pool_id,
        started_at=_time(_int(fields.get(b"started_at"), "started_at", problems), "started_at", problems),
        heartbeat_at=_time(_int(fields.get(b"heartbeat_at"), "heartbeat_at", problems), "heartbeat_at", problems),
        job_names=_list(fields.get(b"job_names")),
        concurrency=_int(fields.get(b"concurrency"), "concurrency", problems),
        host=reply_text(fields.get(b"host", b"")),
        pid=_int(fields.get(b"pid"), "pid", problems),
        worker_ids=_list(fields.get(b"worker_ids")),
        problem="; ".join(problems),
    )


def _observation(worker_id: str, fields: _Fields) -> WorkerObservation:
    problems: list[str] = []
    return WorkerObservation(
        worker_id=worker_id,
        is_busy=bool(fields),
        job_name=reply_text(fields.get(b"job_name", b"")),
        job_id=reply_text(fields.get(b"job_id", b"")),
        started_at=_time(_int(fields.get(b"started_at"), "started_at", problems), "started_at", problems),
        args_json=reply_text(fields.get(b"args", b"")),
        checkin=reply_text(fields.get(b"checkin", b"")),
        checkin_at=_time(_int(fields.get(b"checkin_at"), "checkin_at", problems), "checkin_at", problems),
        attempt=_int(fields.get(b"attempt"), "attempt", problems),
        enqueued_at=_time(_int(fields.get(b"enqueued_at"), "enqueued_at", problems), "enqueued_at", problems),
        problem="; ".join(problems),  # last: after every field above has noted its problem
    )


def _latency(oldest: bytes | None, now: int) -> tuple[int, str]:
    """Seconds the next job has waited, and what is wrong with it when it cannot say (0 then)."""
    if oldest is None:
        return 0, ""
    job = _decode(oldest)
    if job.id.startswith("malformed-"):
        return 0, f"the next job is not valid: {job.last_err}"
    problems: list[str] = []
    enqueued_at = _time(job.enqueued_at, "the next job's t", problems)
    return (max(0, now - enqueued_at) if enqueued_at else 0), "; ".join(problems)


def _time(value: float, name: str, problems: list[str]) -> int:
    """`value` as epoch seconds (`_shown_score`), noting it when it is not a time between 1970 and 9999."""
    if not 0 <= value <= LAST_EPOCH:
        problems.append(f"{name} {value:g} is not a time between 1970 and 9999")
    return _shown_score(value)


def _shown_score(score: float) -> int:
    """A score as a view shows it: whole seconds (a fraction dropped), 0 for ±inf, which an int cannot hold."""
    return int(score) if math.isfinite(score) else 0


def _score_ranges(score: float) -> list[tuple[str, str]]:
    """ZRANGEBYSCORE bounds covering every entry `_find` matches for `score`: its exact score, or one a view shows
    as `score` — within a second of it (a fraction dropped; exact where a double has no fractions) or, for 0,
    ±inf. The caller picks from these by score and id."""
    if math.isinf(score):
        infinity = "+inf" if score > 0 else "-inf"
        return [(infinity, infinity)]
    if abs(score) >= 2**52:
        return [(str(score), str(score))]
    around = (f"({score - 1}", f"({score + 1}")
    return [around, ("-inf", "-inf"), ("+inf", "+inf")] if score == 0 else [around]


def _wanted(job: Job, job_name: str | None, reason: str | None = None) -> bool:
    return (
        not job.id.startswith("malformed-")
        and (job_name is None or job.name == job_name)
        and (reason is None or reason in job.last_err)
    )


def _names_a_queue(job: Job) -> bool:
    try:
        check_job_name(job.name)
    except ValueError:
        return False
    return True


def _int(value: bytes | str | None, name: str = "", problems: list[str] | None = None) -> int:
    """A counter or id field as a whole number >= 0 (0 when absent); anything else reads as 0 and, with
    `problems`, is noted there under `name`."""
    if value is None:
        return 0
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if math.isfinite(number) and number >= 0:
        return int(value) if reply_text(value).strip().isdigit() else int(number)
    if problems is not None:
        problems.append(f"{name} is {reply_text(value)[:40]!r}, not a whole number >= 0")
    return 0


def _list(value: bytes | str | None) -> list[str]:
    return [item for item in reply_text(value or b"").split(",") if item]
