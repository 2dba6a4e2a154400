"""AsyncEnqueuer: `Enqueuer` for asyncio code, on a redis.asyncio client; the same commands, bytes and guarantees."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any, cast

from redis.asyncio import Redis as AsyncRedis
from redis.asyncio import RedisCluster as AsyncRedisCluster

from workq.aio.send_once import AsyncSendOnce
from workq.clock import Clock, ClockLike, as_clock
from workq.connection import check_namespace_fits, resolve_async_redis, resolve_namespace
from workq.enqueue_commands import WAKE_FAULTS, EnqueueCommands, check_delay
from workq.job import Job, ScheduledJob
from workq.keys import Keys
from workq.reconfigure import ReconfigurableEnqueuer


class AsyncEnqueuer(ReconfigurableEnqueuer[AsyncRedis | AsyncRedisCluster]):
    """Every `Enqueuer` method as a coroutine. `redis` is a `redis.asyncio.Redis` or `RedisCluster`, or a URL as
    `Enqueuer` takes them (`rediss://`, `unix://`, `redis+sentinel://`, `redis+cluster://`); arguments are checked
    before Redis is touched.

    Each enqueue is one write to Redis, never resent (redis.asyncio's `Retry` is bypassed): one that returns has
    stored exactly one copy of each job; `ConnectionFailed` means none was stored; `MaybeEnqueued` (reply lost)
    that they may have been. A task cancelled while awaiting an enqueue may have enqueued it, as with any write.

    A redis.asyncio client belongs to the event loop it first connects in: use one AsyncEnqueuer per loop, and
    `await aclose()` (or `async with`) one built from a URL when done.
    """

    _HELD = (*ReconfigurableEnqueuer._HELD, "_owns_client")

    def __init__(
        self,
        namespace: str | None = None,
        redis: AsyncRedis | AsyncRedisCluster | str | None = None,
        *,
        clock: ClockLike = None,
    ) -> None:
        self._connect(resolve_namespace(namespace), redis, as_clock(clock))

    def _connect(self, namespace: str, redis: AsyncRedis | AsyncRedisCluster | str | None, clock: Clock) -> None:
        check_namespace_fits(redis, namespace)
        self.namespace = namespace
        self._owns_client = not isinstance(redis, (AsyncRedis, AsyncRedisCluster))
        self.redis = resolve_async_redis(redis)
        self.keys = Keys(namespace)
        self._commands = EnqueueCommands(self.keys, clock)
        self._once = AsyncSendOnce(self.redis)

    async def enqueue(self, name: str, args: dict[str, Any] | None = None) -> Job:
        """Put a job on the queue of `name` now; one round trip."""
        job = self._commands.new_job(name, args)
        await self._push(name, [job])
        return job

    async def enqueue_in(self, name: str, seconds: float, args: dict[str, Any] | None = None) -> ScheduledJob:
        """Schedule a job to run no earlier than `seconds` from now (rounded up to a whole second); one round trip."""
        job = self._commands.new_job(name, args)
        check_delay(seconds)
        with self._commands.sending(self.redis, [job]):
            (run_at,) = await self._once.execute(self._commands.schedule(job, seconds))
        self._enqueued(name)
        return job.as_view(ScheduledJob, run_at=int(run_at))

    async def enqueue_unique(self, name: str, args: dict[str, Any] | None = None) -> Job | None:
        """Enqueue unless a job of this name with the same args is queued or scheduled (then return None)."""
        return await self._enqueue_unique(name, args, args, by_key=False, seconds=None)

    async def enqueue_unique_in(
        self, name: str, seconds: float, args: dict[str, Any] | None = None
    ) -> ScheduledJob | None:
        """`enqueue_unique`, delayed like `enqueue_in`."""
        job = await self._enqueue_unique(name, args, args, by_key=False, seconds=seconds)
        return job if job is None else cast(ScheduledJob, job)

    async def enqueue_unique_by_key(
        self, name: str, args: dict[str, Any] | None = None, key: dict[str, Any] | None = None
    ) -> Job | None:
        """Unique by `key` instead of args. While one is pending, a later call replaces the args it will run with
        (and returns None)."""
        return await self._enqueue_unique(name, args, key, by_key=True, seconds=None)

    async def enqueue_unique_in_by_key(
        self, name: str, seconds: float, args: dict[str, Any] | None = None, key: dict[str, Any] | None = None
    ) -> ScheduledJob | None:
        """`enqueue_unique_by_key`, delayed like `enqueue_in`."""
        job = await self._enqueue_unique(name, args, key, by_key=True, seconds=seconds)
        return job if job is None else cast(ScheduledJob, job)

    async def enqueue_many(self, name: str, args_list: Iterable[dict[str, Any] | None]) -> list[Job]:
        """Enqueue one job per args dict, in order, in one pipelined round trip (LPUSH in chunks of 1000)."""
        jobs = [self._commands.new_job(name, args) for args in args_list]
        if jobs:
            await self._push(name, jobs)
        return jobs

    async def aclose(self) -> None:
        """Close the client if this enqueuer built it from a URL (a client passed in is the caller's to close)."""
        if self._owns_client:
            await self.redis.aclose()

    async def __aenter__(self) -> AsyncEnqueuer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _enqueue_unique(
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
            (reply,) = await self._once.execute([self._commands.enqueue_unique(job, by_key=by_key, seconds=seconds)])
        enqueued = self._commands.unique_enqueued(job, reply, seconds)
        if enqueued is not None:
            self._enqueued(name)
        return enqueued

    async def _push(self, name: str, jobs: list[Job]) -> None:
        """LPUSH in one round trip; a push that made the queue non-empty wakes idle pools (in the same round trip
        when the last push of `name` did too, see `EnqueueCommands.push`)."""
        with self._commands.sending(self.redis, jobs):
            push = self._commands.push(name, jobs)
            replies = await self._once.execute(push.commands, optional=int(push.wakes))
        if self._commands.pushed_needs_wake(name, jobs, push, replies):
            try:
                await self._once.execute([self._commands.wake(name)])
            except WAKE_FAULTS as exc:
                self._commands.wake_failed(name, exc)
        self._enqueued(name)
