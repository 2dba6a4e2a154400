"""The pool that reliability tests run as `workq worker reliability.app:make_pool` subprocesses.

Tuning comes from environment variables the harness sets; every handler records its runs in Redis under
`<namespace>:test:` so a test can count completed, lost and duplicated jobs however the process died.
Records are keyed by a random token per run, so retrying a record through a dropped connection never counts twice.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from workq import Job, WorkerPool

HEARTBEAT_ENV = "WORKQ_TEST_HEARTBEAT_INTERVAL"
DEAD_AFTER_ENV = "WORKQ_TEST_DEAD_AFTER"
LEASED_TIMEOUT = 3.0
"""Time-out of `work_leased` jobs: far above a healthy run of a few milliseconds."""
HANG_TIMEOUT = 1.0
HANG_LONG_TIMEOUT = 10.0
"""Time limit of `hang_long`: long enough for a test to kill the process running it first."""
LONG_LEASE_TIMEOUT = 8.0
"""Time-out of `work_leased_long` jobs: twice a 4 s run, so only hosts whose clocks disagree could expire it early."""
CRON_ENV = "WORKQ_TEST_CRON"
"""A cron spec: when set, the pool enqueues `cron_tick` on it."""
HANDLERS_ENV = "WORKQ_TEST_HANDLERS"
"""Which kind of handler runs each name: "sync" (thread workers, the default), "async" (`async def` on the pool's
event loop) or "mixed" (`work`, `hold`, `hang` and `exclusive` async, the other names sync)."""
ASYNC_CONCURRENCY_ENV = "WORKQ_TEST_ASYNC_CONCURRENCY"
"""The pool's `async_concurrency` (the harness sets it to the worker's --concurrency: as many slots as threads)."""
HANDLER_KINDS = ("sync", "async", "mixed")
MIXED_ASYNC_NAMES = frozenset({"work", "hold", "hang", "exclusive"})
RECORD_PATIENCE = 30.0
_T = TypeVar("_T")

TRACK_RUNNING = """
local running = redis.call('incrby', KEYS[1], ARGV[1])
if running > tonumber(redis.call('get', KEYS[2]) or '0') then
  redis.call('set', KEYS[2], running)
end
return running
"""
"""KEYS[1]: jobs of a name running now; KEYS[2]: the most ever seen. ARGV[1]: 1 on start, -1 at the end."""

RECORD_START_TIME = """
local now = redis.call('time')
redis.call('hset', KEYS[1], ARGV[1], now[1] .. '.' .. string.format('%06d', now[2]) .. ' ' .. ARGV[2])
"""
"""KEYS[1]: the `started_at` hash. ARGV[1]: run token; ARGV[2]: job id. Stores '<Redis TIME> <job id>'."""


class Recorder:
    """What the handlers write under `<namespace>:test:` (hashes `started`, `done`: run token → job id)."""

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool

    def key(self, suffix: str) -> str:
        return f"{self._pool.namespace}:test:{suffix}"

    def persist(self, call: Callable[[], _T]) -> _T:
        """Ride through dropped connections and restarts, as the worker's own Redis calls do."""
        deadline = time.monotonic() + RECORD_PATIENCE
        while True:
            try:
                return call()
            except (RedisConnectionError, RedisTimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def started(self, job: Job) -> str:
        """Also notes which process ran it (`started_by`: run token → pid)."""
        return self._start(job, claim_first_run=False)[0]

    def started_first(self, job: Job) -> tuple[str, bool]:
        """`started`, and whether this is the job's first run, claimed (`first_run`: job id → run token) in the same
        transaction: a run a test sees started has made its claim, so killing its process at once still leaves the
        job's later runs to finish at once."""
        return self._start(job, claim_first_run=True)

    def _start(self, job: Job, *, claim_first_run: bool) -> tuple[str, bool]:
        token = secrets.token_hex(8)
        pipe = self._pool.redis.pipeline(transaction=True)
        pipe.hset(self.key("started"), token, job.id)
        pipe.hset(self.key("started_by"), token, os.getpid())
        if claim_first_run:
            pipe.hsetnx(self.key("first_run"), job.id, token)
            pipe.hget(self.key("first_run"), job.id)  # read back: a transaction sent again claims nothing twice
        replies = self.persist(pipe.execute)
        return token, claim_first_run and replies[-1] in (token, token.encode())

    def done(self, job: Job, token: str) -> None:
        self.persist(lambda: self._pool.redis.hset(self.key("done"), token, job.id))

    def started_at(self, job: Job, token: str) -> None:
        """When this run started on Redis's clock (`started_at`: run token → '<epoch s> <job id>')."""
        self.persist(lambda: self._pool.redis.eval(RECORD_START_TIME, 1, self.key("started_at"), token, job.id))

    def released(self) -> bool:
        return bool(self.persist(lambda: self._pool.redis.exists(self.key("release"))))

    def track_running(self, name: str, change: int) -> None:
        counters = [self.key(f"running:{name}"), self.key(f"max_running:{name}")]
        self.persist(lambda: self._pool.redis.eval(TRACK_RUNNING, 2, *counters, change))


class Handlers:
    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def work(self, job: Job) -> None:
        """Sleeps `seconds` (default 0) to stand for real work."""
        token = self._recorder.started(job)
        time.sleep(float(job.args.get("seconds", 0)))
        self._recorder.done(job, token)

    def hold(self, job: Job) -> None:
        """A job's first run holds until the test sets `test:release` (or `seconds` pass); later runs finish at once.
        Runs of one name at once are counted (`max_running:<name>`)."""
        token, first_run = self._recorder.started_first(job)
        self._recorder.track_running(job.name, 1)
        try:
            if first_run:
                deadline = time.monotonic() + float(job.args.get("seconds", 60))
                while not self._recorder.released() and time.monotonic() < deadline:
                    time.sleep(0.02)
        finally:
            self._recorder.track_running(job.name, -1)
        self._recorder.done(job, token)

    def checkin_long(self, job: Job) -> None:
        """Runs `seconds`, checking in every `every` seconds (more often than its time-out)."""
        token = self._recorder.started(job)
        deadline = time.monotonic() + float(job.args["seconds"])
        step = 0
        while time.monotonic() < deadline:
            step += 1
            job.checkin(f"step {step}")
            time.sleep(float(job.args["every"]))
        self._recorder.done(job, token)

    def clocked(self, job: Job) -> None:
        """Records when it started on Redis's clock, whatever this host's clock says."""
        token = self._recorder.started(job)
        self._recorder.started_at(job, token)
        self._recorder.done(job, token)

    def exclusive(self, job: Job) -> None:
        """Counts how many `exclusive` jobs run at once, keeping the maximum ever seen."""
        token = self._recorder.started(job)
        self._recorder.track_running("exclusive", 1)
        try:
            time.sleep(float(job.args.get("seconds", 0.02)))
        finally:
            self._recorder.track_running("exclusive", -1)
        self._recorder.done(job, token)


class AsyncHandlers:
    """`Handlers` as `async def`: they wait on the loop (`asyncio.sleep`) and record from a helper thread, as an
    async handler waits on its own I/O, so a job's run never blocks the other slots of its loop."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    async def _record(self, call: Callable[[], _T]) -> _T:
        return await asyncio.to_thread(call)

    async def work(self, job: Job) -> None:
        token = await self._record(lambda: self._recorder.started(job))
        await asyncio.sleep(float(job.args.get("seconds", 0)))
        await self._record(lambda: self._recorder.done(job, token))

    async def hold(self, job: Job) -> None:
        token, first_run = await self._record(lambda: self._recorder.started_first(job))
        await self._record(lambda: self._recorder.track_running(job.name, 1))
        try:
            if first_run:
                deadline = time.monotonic() + float(job.args.get("seconds", 60))
                while not await self._record(self._recorder.released) and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
        finally:
            await self._record(lambda: self._recorder.track_running(job.name, -1))
        await self._record(lambda: self._recorder.done(job, token))

    async def checkin_long(self, job: Job) -> None:
        token = await self._record(lambda: self._recorder.started(job))
        deadline = time.monotonic() + float(job.args["seconds"])
        step = 0
        while time.monotonic() < deadline:
            step += 1
            job.checkin(f"step {step}")
            await asyncio.sleep(float(job.args["every"]))
        await self._record(lambda: self._recorder.done(job, token))

    async def exclusive(self, job: Job) -> None:
        token = await self._record(lambda: self._recorder.started(job))
        await self._record(lambda: self._recorder.track_running("exclusive", 1))
        try:
            await asyncio.sleep(float(job.args.get("seconds", 0.02)))
        finally:
            await self._record(lambda: self._recorder.track_running("exclusive", -1))
        await self._record(lambda: self._recorder.done(job, token))


def make_pool() -> WorkerPool:
    pool = WorkerPool(
        heartbeat_interval=float(os.environ.get(HEARTBEAT_ENV, "0.2")),
        dead_after=float(os.environ.get(DEAD_AFTER_ENV, "2.0")),
        async_concurrency=int(os.environ.get(ASYNC_CONCURRENCY_ENV, "100")),
    )
    kind = os.environ.get(HANDLERS_ENV, "sync")
    recorder = Recorder(pool)
    handlers, async_handlers = Handlers(recorder), AsyncHandlers(recorder)

    def register(
        name: str,
        handler: Callable[[Job], None],
        async_handler: Callable[[Job], Awaitable[None]] | None = None,
        *,
        timeout: float = 0,
        max_concurrency: int = 0,
    ) -> None:
        """A failed run (never expected here) retries after 1 s instead of gocraft's 16+ s, many times over."""
        run_async = kind == "async" or (kind == "mixed" and name in MIXED_ASYNC_NAMES)
        chosen = async_handler if run_async and async_handler is not None else handler
        pool.job(name, chosen, max_fails=25, backoff=_one_second, timeout=timeout, max_concurrency=max_concurrency)

    register("work", handlers.work, async_handlers.work)
    register("other", handlers.work, async_handlers.work)
    register("work_leased", handlers.work, async_handlers.work, timeout=LEASED_TIMEOUT)
    register("hold", handlers.hold, async_handlers.hold)
    register("hang", handlers.hold, async_handlers.hold, timeout=HANG_TIMEOUT)
    register("hang_long", handlers.hold, async_handlers.hold, timeout=HANG_LONG_TIMEOUT)
    register("checkin_long", handlers.checkin_long, async_handlers.checkin_long, timeout=HANG_TIMEOUT)
    register("exclusive", handlers.exclusive, async_handlers.exclusive, max_concurrency=1)
    register("work_leased_long", handlers.work, async_handlers.work, timeout=LONG_LEASE_TIMEOUT)
    register("clocked", handlers.clocked)
    register("cron_tick", handlers.clocked)
    if cron_spec := os.environ.get(CRON_ENV):
        pool.periodically_enqueue(cron_spec, "cron_tick")
    return pool


def _one_second(job: Job) -> int:
    return 1
