"""Enqueuer: puts jobs on their queues (or in the scheduled set) in as few round trips as possible."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from workq import unique
from workq.clock import Clock, ClockLike, as_clock
from workq.connection import (
    REDIS_FAULTS,
    RedisClient,
    check_namespace_fits,
    resolve_namespace,
    resolve_redis,
    translated_faults,
)
from workq.errors import MaybeEnqueued
from workq.job import Job, ScheduledJob, check_args, check_job_name
from workq.keys import Keys
from workq.scripts import Scripts
from workq.send_once import Command, ReplyLost, SendOnce

logger = logging.getLogger("workq")

ENQUEUE_MANY_CHUNK = 1000

WAKE_FAULTS: tuple[type[Exception], ...] = (ReplyLost, *REDIS_FAULTS)
"""What a wake-up may meet without failing the enqueue that sent it."""

KNOWN_JOBS_REFRESH = 300.0
"""Seconds between re-adding a name to `known_jobs`, which is otherwise added once per name per Enqueuer."""

MAX_DELAY = 100 * 365 * 86400
"""Longest delay `enqueue_in` accepts: beyond it a due time is surely a mistake (10**17 s, say), and times past
year 9999 break every tool that shows them."""

UNIQUE_LOCK_LIFETIME = 86400
"""Seconds a unique lock outlives its job's due time, in case the job is lost before a worker starts it."""


class Enqueuer:
    """Thread-safe producer of jobs for one namespace. Arguments are checked before Redis is touched.

    Every enqueue is sent to Redis once (see `workq.send_once`): one that returns has stored exactly one copy of
    each job; `ConnectionFailed` means none was stored; `MaybeEnqueued` (reply lost) that they may have been.
    """

    namespace: str
    redis: RedisClient
    keys: Keys
    _scripts: Scripts
    _once: SendOnce
    _known_until: dict[str, float]

    def __init__(
        self,
        namespace: str | None = None,
        redis: RedisClient | str | None = None,
        *,
        clock: ClockLike = None,
    ) -> None:
        self._clock: Clock = as_clock(clock)
        self._known_lock = threading.Lock()
        self._connect(resolve_namespace(namespace), redis)
        self.on_enqueued: Callable[[str], None] | None = None
        """Called with the job name after each enqueue that stored a job (`workq.testing` runs it there)."""

    def configure(
        self, *, namespace: str | None = None, redis: RedisClient | str | None = None, clock: ClockLike = None
    ) -> None:
        """Point this enqueuer at another namespace or Redis (a module-level Enqueuer set up once the app knows
        its settings); `clock` replaces Redis's clock as the source of "now". Not while other threads enqueue."""
        self._connect(self.namespace if namespace is None else namespace, self.redis if redis is None else redis)
        if clock is not None:
            self._clock = as_clock(clock)

    @contextmanager
    def configured(
        self, *, namespace: str | None = None, redis: RedisClient | str | None = None, clock: ClockLike = None
    ) -> Iterator[None]:
        """`configure(...)` for the length of a `with` block, then exactly the settings (and client) before it."""
        saved = (self.namespace, self.redis, self.keys, self._scripts, self._once, self._known_until, self._clock)
        self.configure(namespace=namespace, redis=redis, clock=clock)
        try:
            yield
        finally:
            self.namespace, self.redis, self.keys, self._scripts, self._once, self._known_until, self._clock = saved

    def _connect(self, namespace: str, redis: RedisClient | str | None) -> None:
        check_namespace_fits(redis, namespace)
        self.namespace = namespace
        self.redis = resolve_redis(redis)
        self.keys = Keys(namespace)
        self._scripts = Scripts.register(self.redis)
        self._once = SendOnce(self.redis)
        with self._known_lock:
            self._known_until = {}

    def enqueue(self, name: str, args: dict[str, Any] | None = None) -> Job:
        """Put a job on the queue of `name` now; one round trip."""
        job = self._new_job(name, args)
        self._push(name, [job])
        return job

    def enqueue_in(self, name: str, seconds: float, args: dict[str, Any] | None = None) -> ScheduledJob:
        """Schedule a job to run no earlier than `seconds` from now (rounded up to a whole second)."""
        job = self._new_job(name, args)
        job_json = job.to_json()
        run_at = self._run_at(seconds)
        with self._maybe_enqueued([job]):
            self._once.execute([("SADD", self.keys.known_jobs, name), ("ZADD", self.keys.scheduled, run_at, job_json)])
        self._enqueued(name)
        return job.as_view(ScheduledJob, run_at=run_at)

    def enqueue_unique(self, name: str, args: dict[str, Any] | None = None) -> Job | None:
        """Enqueue unless a job of this name with the same args is queued or scheduled (then return None).

        The lock is released when a worker starts the job, so a running, retrying or dead job blocks nothing.
        """
        return self._enqueue_unique(name, args, args, by_key=False, seconds=None)

    def enqueue_unique_in(self, name: str, seconds: float, args: dict[str, Any] | None = None) -> ScheduledJob | None:
        """`enqueue_unique`, delayed like `enqueue_in`."""
        job = self._enqueue_unique(name, args, args, by_key=False, seconds=seconds)
        return job if job is None else cast(ScheduledJob, job)

    def enqueue_unique_by_key(
        self, name: str, args: dict[str, Any] | None = None, key: dict[str, Any] | None = None
    ) -> Job | None:
        """Unique by `key` instead of args. While one is pending, a later call replaces the args it will run with
        (and returns None)."""
        return self._enqueue_unique(name, args, key, by_key=True, seconds=None)

    def enqueue_unique_in_by_key(
        self, name: str, seconds: float, args: dict[str, Any] | None = None, key: dict[str, Any] | None = None
    ) -> ScheduledJob | None:
        """`enqueue_unique_by_key`, delayed like `enqueue_in`."""
        job = self._enqueue_unique(name, args, key, by_key=True, seconds=seconds)
        return job if job is None else cast(ScheduledJob, job)

    def _enqueue_unique(
        self,
        name: str,
        args: dict[str, Any] | None,
        key_map: dict[str, Any] | None,
        *,
        by_key: bool,
        seconds: float | None,
    ) -> Job | None:
        job = self._new_job(name, args)
        if key_map is not None:
            check_args(key_map)
        job.unique = True
        job.unique_key = self.keys.unique_for(name, key_map)
        job_json = job.to_json()
        run_at = None if seconds is None else self._run_at(seconds)
        lifetime = UNIQUE_LOCK_LIFETIME + (0 if seconds is None else math.ceil(max(seconds, 0)))
        destination = self.keys.queue(name) if run_at is None else self.keys.scheduled
        with self._maybe_enqueued([job]):
            enqueued = self._once.script(
                self._scripts.enqueue_unique,
                keys=[destination, job.unique_key, self.keys.known_jobs, self.keys.waiting(name)],
                args=[
                    job_json,
                    lifetime,
                    "" if run_at is None else run_at,
                    unique.lock_value(job),
                    name,
                    self.keys.wake_channel,
                    *([unique.by_key_value_body(job_json)] if by_key else []),
                ],
            )
        if not enqueued:
            return None
        self._enqueued(name)
        return job if run_at is None else job.as_view(ScheduledJob, run_at=run_at)

    def enqueue_many(self, name: str, args_list: Iterable[dict[str, Any] | None]) -> list[Job]:
        """Enqueue one job per args dict, in order, in one pipelined round trip (LPUSH in chunks of 1000)."""
        jobs = [self._new_job(name, args) for args in args_list]
        if not jobs:
            return jobs
        self._push(name, jobs)
        return jobs

    def _run_at(self, seconds: float) -> int:
        """The due time `seconds` from now on Redis's clock, so an enqueuer whose clock is off schedules nothing
        early or late (one `TIME` round trip)."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
            raise TypeError(f"seconds must be a finite number, got {seconds!r}")
        if seconds > MAX_DELAY:
            raise ValueError(f"seconds must be at most {MAX_DELAY} (100 years), got {seconds!r}")
        with translated_faults(self.redis):
            return math.ceil(self._clock.server_now(self.redis) + max(seconds, 0))

    def _new_job(self, name: str, args: dict[str, Any] | None) -> Job:
        check_job_name(name)
        return Job(name=name, enqueued_at=int(self._clock.wall()), args=check_args(args), args_null=args is None)

    def _push(self, name: str, jobs: list[Job]) -> None:
        """LPUSH in chunks of 1000, in one round trip; a push that made the queue non-empty then wakes idle pools.

        A queue that already held jobs needs no wake-up: whoever made it non-empty sent one, and a pool that
        marked itself waiting after that looks at the queue once more before it sleeps. So a steady producer
        pays one plain LPUSH per job.
        """
        queue, jobs_json = self.keys.queue(name), [job.to_json() for job in jobs]
        commands: list[Command] = [
            ("LPUSH", queue, *jobs_json[start : start + ENQUEUE_MANY_CHUNK])
            for start in range(0, len(jobs_json), ENQUEUE_MANY_CHUNK)
        ]
        with self._faults_forget_known(jobs):
            if self._first_use(name):
                commands.append(("SADD", self.keys.known_jobs, name))
            lengths = self._once.execute(commands)
        if int(lengths[0]) == min(len(jobs), ENQUEUE_MANY_CHUNK):  # this push made the queue non-empty
            self._wake(name)
        self._enqueued(name)

    def _enqueued(self, name: str) -> None:
        if self.on_enqueued is not None:
            self.on_enqueued(name)

    def _wake(self, name: str) -> None:
        """Wake pools idle on `name`. The jobs are queued already: a failure here only leaves the pools to find
        them at their next poll, so it is logged, not raised."""
        try:
            self._once.script(self._scripts.wake, [self.keys.waiting(name)], [self.keys.wake_channel, name])
        except WAKE_FAULTS as exc:
            logger.warning("enqueued %s but could not wake idle worker pools (%s); they poll each second", name, exc)

    def _first_use(self, name: str) -> bool:
        """True when `name` must be (re)added to known_jobs: on first use and every few minutes after."""
        now = self._clock.wall()
        with self._known_lock:
            if self._known_until.get(name, 0.0) > now:
                return False
            self._known_until[name] = now + KNOWN_JOBS_REFRESH
            return True

    @contextmanager
    def _faults_forget_known(self, jobs: Sequence[Job]) -> Iterator[None]:
        """`_maybe_enqueued`; after any failure, re-add names to known_jobs on their next use."""
        try:
            with self._maybe_enqueued(jobs):
                yield
        except BaseException:
            with self._known_lock:
                self._known_until.clear()
            raise

    @contextmanager
    def _maybe_enqueued(self, jobs: Sequence[Job]) -> Iterator[None]:
        """Translate Redis faults (nothing was enqueued: `ConnectionFailed`) and a lost reply (`MaybeEnqueued`)."""
        try:
            with translated_faults(self.redis):
                yield
        except ReplyLost as lost:
            names = sorted({job.name for job in jobs})
            what = f"job {jobs[0].name} {jobs[0].id}" if len(jobs) == 1 else f"{len(jobs)} jobs of {', '.join(names)}"
            raise MaybeEnqueued(
                f"{what} may have been enqueued: Redis at {lost.server} got the command but its reply was lost "
                f"({lost.cause}); it is not sent again, so check for the job id before enqueuing it again",
                jobs,
            ) from lost.cause
