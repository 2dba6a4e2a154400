"""Enqueuer: puts jobs on their queues (or in the scheduled set) in as few round trips as possible."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from workq.clock import Clock, ClockLike, as_clock
from workq.connection import (
    RedisClient,
    check_namespace_fits,
    resolve_namespace,
    resolve_redis,
)
from workq.enqueue_commands import WAKE_FAULTS, EnqueueCommands, check_delay
from workq.job import Job, ScheduledJob
from workq.keys import Keys
from workq.reconfigure import ReconfigurableEnqueuer
from workq.send_once import SendOnce


class Enqueuer(ReconfigurableEnqueuer[RedisClient]):
    """Thread-safe producer of jobs for one namespace. Arguments are checked before Redis is touched.

    Every enqueue is sent to Redis once (see `workq.send_once`): one that returns has stored exactly one copy of
    each job; `ConnectionFailed` means none was stored; `MaybeEnqueued` (reply lost) that they may have been.
    """

    keys: Keys
    _once: SendOnce

    def __init__(
        self,
        namespace: str | None = None,
        redis: RedisClient | str | None = None,
        *,
        clock: ClockLike = None,
    ) -> None:
        self._connect(resolve_namespace(namespace), redis, as_clock(clock))

    def _connect(self, namespace: str, redis: RedisClient | str | None, clock: Clock) -> None:
        check_namespace_fits(redis, namespace)
        self.namespace = namespace
        self.redis = resolve_redis(redis)
        self.keys = Keys(namespace)
        self._commands = EnqueueCommands(self.keys, clock)
        self._once = SendOnce(self.redis)

    def enqueue(self, name: str, args: dict[str, Any] | None = None) -> Job:
        """Put a job on the queue of `name` now; one round trip."""
        job = self._commands.new_job(name, args)
        self._push(name, [job])
        return job

    def enqueue_in(self, name: str, seconds: float, args: dict[str, Any] | None = None) -> ScheduledJob:
        """Schedule a job to run no earlier than `seconds` from now (rounded up to a whole second); one round trip."""
        job = self._commands.new_job(name, args)
        check_delay(seconds)
        with self._commands.sending(self.redis, [job]):
            (run_at,) = self._once.execute(self._commands.schedule(job, seconds))
        self._enqueued(name)
        return job.as_view(ScheduledJob, run_at=int(run_at))

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
        job = self._commands.new_unique_job(name, args, key_map, seconds)
        with self._commands.sending(self.redis, [job]):
            (reply,) = self._once.execute([self._commands.enqueue_unique(job, by_key=by_key, seconds=seconds)])
        enqueued = self._commands.unique_enqueued(job, reply, seconds)
        if enqueued is not None:
            self._enqueued(name)
        return enqueued

    def enqueue_many(self, name: str, args_list: Iterable[dict[str, Any] | None]) -> list[Job]:
        """Enqueue one job per args dict, in order, in one pipelined round trip (LPUSH in chunks of 1000)."""
        jobs = [self._commands.new_job(name, args) for args in args_list]
        if not jobs:
            return jobs
        self._push(name, jobs)
        return jobs

    def _push(self, name: str, jobs: list[Job]) -> None:
        """LPUSH in one round trip; a push that made the queue non-empty wakes idle pools (in the same round trip
        when the last push of `name` did too, see `EnqueueCommands.push`)."""
        with self._commands.sending(self.redis, jobs):
            push = self._commands.push(name, jobs)
            replies = self._once.execute(push.commands, optional=int(push.wakes))
        if self._commands.pushed_needs_wake(name, jobs, push, replies):
            try:
                self._once.execute([self._commands.wake(name)])
            except WAKE_FAULTS as exc:
                self._commands.wake_failed(name, exc)
        self._enqueued(name)
