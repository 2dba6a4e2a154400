"""Enqueuer: puts jobs on their queues (or in the scheduled set) in as few round trips as possible."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from redis import Redis
from redis.client import Pipeline

from workq.connection import resolve_namespace, resolve_redis, translated_faults
from workq.job import Job, ScheduledJob, check_args, check_job_name
from workq.keys import Keys

KNOWN_JOBS_REFRESH = 300.0
"""Seconds between re-adding a name to `known_jobs`, which is otherwise added once per name per Enqueuer."""

ENQUEUE_MANY_CHUNK = 1000


class Enqueuer:
    """Thread-safe producer of jobs for one namespace. Arguments are checked before Redis is touched."""

    def __init__(
        self,
        namespace: str | None = None,
        redis: Redis | str | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.namespace = resolve_namespace(namespace)
        self.redis = resolve_redis(redis)
        self.keys = Keys(self.namespace)
        self._clock = clock
        self._known_until: dict[str, float] = {}
        self._known_lock = threading.Lock()

    def enqueue(self, name: str, args: dict[str, Any] | None = None) -> Job:
        """Put a job on the queue of `name` now; one round trip."""
        job = self._new_job(name, args)
        pipe = self.redis.pipeline(transaction=False)
        self._note_known(pipe, name)
        pipe.lpush(self.keys.queue(name), job.to_json())
        self._execute(pipe)
        return job

    def enqueue_in(self, name: str, seconds: float, args: dict[str, Any] | None = None) -> ScheduledJob:
        """Schedule a job to run no earlier than `seconds` from now (rounded up to a whole second)."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
            raise TypeError(f"seconds must be a finite number, got {seconds!r}")
        job = self._new_job(name, args)
        run_at = math.ceil(self._clock() + max(seconds, 0))
        scheduled = job.as_view(ScheduledJob, run_at=run_at)
        pipe = self.redis.pipeline(transaction=False)
        self._note_known(pipe, name)
        pipe.zadd(self.keys.scheduled, {job.to_json(): run_at})
        self._execute(pipe)
        return scheduled

    def enqueue_many(self, name: str, args_list: Iterable[dict[str, Any] | None]) -> list[Job]:
        """Enqueue one job per args dict, in order, in one pipelined round trip (LPUSH in chunks of 1000)."""
        jobs = [self._new_job(name, args) for args in args_list]
        if not jobs:
            return jobs
        queue = self.keys.queue(name)
        pipe = self.redis.pipeline(transaction=False)
        self._note_known(pipe, name)
        for start in range(0, len(jobs), ENQUEUE_MANY_CHUNK):
            pipe.lpush(queue, *(job.to_json() for job in jobs[start : start + ENQUEUE_MANY_CHUNK]))
        self._execute(pipe)
        return jobs

    def _new_job(self, name: str, args: dict[str, Any] | None) -> Job:
        check_job_name(name)
        return Job(name=name, enqueued_at=int(self._clock()), args=check_args(args), args_null=args is None)

    def _note_known(self, pipe: Pipeline, name: str) -> None:
        """Add `name` to known_jobs on first use and every few minutes after, not on every enqueue."""
        now = self._clock()
        with self._known_lock:
            if self._known_until.get(name, 0.0) > now:
                return
            self._known_until[name] = now + KNOWN_JOBS_REFRESH
        pipe.sadd(self.keys.known_jobs, name)

    def _execute(self, pipe: Pipeline) -> None:
        with translated_faults(self.redis):
            try:
                pipe.execute()
            except BaseException:
                with self._known_lock:
                    self._known_until.clear()
                raise
