"""Enqueuer: puts jobs on their queues (or in the scheduled set) in as few round trips as possible."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from workq.connection import (
    REDIS_FAULTS,
    RedisClient,
    check_namespace_fits,
    dedicated_client,
    resolve_namespace,
    resolve_redis,
    translated_faults,
)
from workq.job import Job, ScheduledJob, check_args, check_job_name
from workq.keys import Keys
from workq.scripts import Scripts

ENQUEUE_MANY_CHUNK = 1000

KNOWN_JOBS_REFRESH = 300.0
"""Seconds between re-adding a name to `known_jobs`, which is otherwise added once per name per Enqueuer."""

UNIQUE_LOCK_LIFETIME = 86400
"""Seconds a unique lock outlives its job's due time, in case the job is lost before a worker starts it."""


class Enqueuer:
    """Thread-safe producer of jobs for one namespace. Arguments are checked before Redis is touched."""

    def __init__(
        self,
        namespace: str | None = None,
        redis: RedisClient | str | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.namespace = resolve_namespace(namespace)
        check_namespace_fits(redis, self.namespace)
        self.redis = resolve_redis(redis)
        self.keys = Keys(self.namespace)
        self._clock = clock
        self._scripts = Scripts.register(self.redis)
        self._known_until: dict[str, float] = {}
        self._known_lock = threading.Lock()
        self._per_thread = threading.local()

    def enqueue(self, name: str, args: dict[str, Any] | None = None) -> Job:
        """Put a job on the queue of `name` now; one round trip."""
        job = self._new_job(name, args)
        self._push(name, [job.to_json()])
        return job

    def enqueue_in(self, name: str, seconds: float, args: dict[str, Any] | None = None) -> ScheduledJob:
        """Schedule a job to run no earlier than `seconds` from now (rounded up to a whole second)."""
        run_at = self._run_at(seconds)
        job = self._new_job(name, args)
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(self.keys.known_jobs, name)
        pipe.zadd(self.keys.scheduled, {job.to_json(): run_at})
        with translated_faults(self.redis):
            pipe.execute()
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
        run_at = None if seconds is None else self._run_at(seconds)
        job = self._new_job(name, args)
        if key_map is not None:
            check_args(key_map)
        job.unique = True
        job.unique_key = self.keys.unique_for(name, key_map)
        job_json = job.to_json()
        lifetime = UNIQUE_LOCK_LIFETIME + (0 if run_at is None else max(0, run_at - int(self._clock())))
        destination = self.keys.queue(name) if run_at is None else self.keys.scheduled
        with translated_faults(self.redis):
            enqueued = self._scripts.enqueue_unique(
                keys=[destination, job.unique_key, self.keys.known_jobs, self.keys.waiting(name)],
                args=[
                    job_json,
                    lifetime,
                    "" if run_at is None else run_at,
                    job_json if by_key else "1",
                    name,
                    self.keys.wake_channel,
                ],
            )
        if not enqueued:
            return None
        return job if run_at is None else job.as_view(ScheduledJob, run_at=run_at)

    def enqueue_many(self, name: str, args_list: Iterable[dict[str, Any] | None]) -> list[Job]:
        """Enqueue one job per args dict, in order, in one pipelined round trip (LPUSH in chunks of 1000)."""
        jobs = [self._new_job(name, args) for args in args_list]
        if not jobs:
            return jobs
        self._push(name, [job.to_json() for job in jobs])
        return jobs

    def _run_at(self, seconds: float) -> int:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
            raise TypeError(f"seconds must be a finite number, got {seconds!r}")
        return math.ceil(self._clock() + max(seconds, 0))

    def _new_job(self, name: str, args: dict[str, Any] | None) -> Job:
        check_job_name(name)
        return Job(name=name, enqueued_at=int(self._clock()), args=check_args(args), args_null=args is None)

    def _push(self, name: str, jobs_json: list[str]) -> None:
        """LPUSH in chunks of 1000, in one round trip; a push that made the queue non-empty then wakes idle pools.

        A queue that already held jobs needs no wake-up: whoever made it non-empty sent one, and a pool that
        marked itself waiting after that looks at the queue once more before it sleeps. So a steady producer
        pays one plain LPUSH per job.
        """
        queue = self.keys.queue(name)
        chunks = [
            jobs_json[start : start + ENQUEUE_MANY_CHUNK] for start in range(0, len(jobs_json), ENQUEUE_MANY_CHUNK)
        ]
        with self._faults_forget_known():
            first_use = self._first_use(name)
            if len(chunks) == 1 and not first_use:
                lengths = [self._lpush_on_thread_client(queue, chunks[0])]
            else:
                pipe = self.redis.pipeline(transaction=False)
                for chunk in chunks:
                    pipe.lpush(queue, *chunk)
                if first_use:
                    pipe.sadd(self.keys.known_jobs, name)
                lengths = pipe.execute()[: len(chunks)]
            if int(lengths[0]) == len(chunks[0]):
                self._scripts.wake(
                    keys=[self.keys.waiting(name)], args=[self.keys.wake_channel, name], client=self._thread_client()
                )

    def _lpush_on_thread_client(self, queue: str, jobs_json: list[str]) -> int:
        """LPUSH on this thread's connection; if that connection went stale (Redis restarted, an idle timeout),
        once more on a fresh one from the pool. (An enqueue that raises may, rarely, have been enqueued.)"""
        try:
            return int(self._thread_client().lpush(queue, *jobs_json))
        except REDIS_FAULTS:
            self._per_thread.client.close()
            self._per_thread.client = None
            return int(self.redis.lpush(queue, *jobs_json))

    def _thread_client(self) -> RedisClient:
        """This thread's own connection (see `dedicated_client`), returned to the pool when the thread ends."""
        client: RedisClient | None = getattr(self._per_thread, "client", None)
        if client is None:
            client = self._per_thread.client = dedicated_client(self.redis)
        return client

    def _first_use(self, name: str) -> bool:
        """True when `name` must be (re)added to known_jobs: on first use and every few minutes after."""
        now = self._clock()
        with self._known_lock:
            if self._known_until.get(name, 0.0) > now:
                return False
            self._known_until[name] = now + KNOWN_JOBS_REFRESH
            return True

    @contextmanager
    def _faults_forget_known(self) -> Iterator[None]:
        """Translate Redis faults; after any failure, re-add names to known_jobs on their next use."""
        try:
            with translated_faults(self.redis):
                yield
        except BaseException:
            with self._known_lock:
                self._known_until.clear()
            raise
