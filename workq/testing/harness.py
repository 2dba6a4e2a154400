"""TestHarness: a pool and the app's enqueuers on one in-memory Redis with a fake clock, run from the test's thread.

Nothing here is a second queue: jobs go through the production Lua scripts (on fakeredis), the pool's middleware
chain and its worker's fetch → run → ack steps; the fake clock is injected where production reads Redis `TIME`
(`workq.clock`), so due times, leases and cron windows all follow it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import redis
from redis.asyncio import Redis as AsyncRedis

from workq.aio import AsyncEnqueuer
from workq.client import Client
from workq.distribution import install_hint
from workq.enqueuer import Enqueuer
from workq.errors import WorkqError
from workq.job import DeadJob, Job, RetryJob, ScheduledJob
from workq.periodic import LOOKAHEAD as CRON_LOOKAHEAD
from workq.run import Finished
from workq.worker_pool import WorkerPool

if TYPE_CHECKING:
    from workq.running_pool import RunningPool

MAX_RUNS_PER_DRAIN = 10_000
"""A drain that runs this many jobs and still finds some due is looping (a job rescheduling itself with no
delay, say): it raises instead of hanging the test."""

INSTALL_HINT = f"{install_hint('testing')} (it brings fakeredis with Lua)"

_Listed = TypeVar("_Listed", ScheduledJob, RetryJob, DeadJob)


@dataclass(frozen=True)
class DrainResult:
    """What one `drain()` ran, in run order. `failed` holds every run that raised (counted like the `failed`
    stats: whether it will be retried, died or was discarded); `dead` those of them now in the dead set;
    `rescheduled` the runs that raised `workq.Retry`."""

    processed: list[Job] = field(default_factory=list)
    failed: list[Job] = field(default_factory=list)
    dead: list[Job] = field(default_factory=list)
    rescheduled: list[Job] = field(default_factory=list)

    @classmethod
    def of(cls, runs: list[Finished]) -> DrainResult:
        def jobs(*outcomes: str) -> list[Job]:
            return [run.job for run in runs if run.outcome in outcomes]

        return cls(jobs("processed"), jobs("retry", "dead", "discarded"), jobs("dead"), jobs("rescheduled"))


class FakeClock:
    """Epoch seconds that move only when `TestHarness.advance` moves them; the harness injects it as every part's
    "now" (setting `now` yourself moves time without making anything due)."""

    def __init__(self, start: float) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now


class TestHarness:
    """`pool` and `enqueuers` (the `Enqueuer`s and `AsyncEnqueuer`s your code enqueues through) on a fresh
    in-memory Redis and a fake clock while open (`with TestHarness(pool) as h:`); closing puts back their own
    connection, namespace and clock.

    - `drain()` runs every due job in the calling thread and returns a `DrainResult`;
    - `advance(seconds)` moves the clock: scheduled, retrying and cron jobs fall due (run them with `drain()`);
    - `queued(name)`, `scheduled()`, `retrying()`, `dead()` list jobs; `h.enqueuer` and `h.client` share it all.

    With `eager=True` a job runs as soon as it is due — at its enqueue, or at the `advance` that makes it due —
    and a handler's exception propagates to that call (the job is filed as a worker would file it first).
    No thread is started unless the test starts the pool itself.
    """

    __test__ = False  # named Test*, but not a pytest test class

    def __init__(
        self, pool: WorkerPool, *enqueuers: Enqueuer | AsyncEnqueuer, eager: bool = False, start: float | None = None
    ) -> None:
        fakeredis = _import_fakeredis()
        if not isinstance(pool, WorkerPool):
            raise TypeError(f"TestHarness takes a WorkerPool first, got {type(pool).__name__}")
        for enqueuer in enqueuers:
            if not isinstance(enqueuer, (Enqueuer, AsyncEnqueuer)):
                raise TypeError(
                    f"TestHarness takes Enqueuers or AsyncEnqueuers after the pool, got {type(enqueuer).__name__}"
                )
            if enqueuer.namespace != pool.namespace:
                raise WorkqError(
                    f"an Enqueuer on namespace {enqueuer.namespace!r} cannot feed a pool on {pool.namespace!r}: "
                    "its jobs would never reach it; configure it onto the pool's namespace, or leave it out"
                )
        self.pool = pool
        self.eager = eager
        self.clock = FakeClock(math.floor(time.time()) if start is None else start)
        server = fakeredis.FakeServer()
        self.redis: redis.Redis = fakeredis.FakeRedis(server=server)
        self._async_redis: Callable[[], AsyncRedis] = lambda: fakeredis.FakeAsyncRedis(server=server)
        self.enqueuer = Enqueuer(pool.namespace, self.redis, clock=self.clock)
        self.client = Client(pool.namespace, self.redis, clock=self.clock)
        self._enqueuers = enqueuers
        self._inline: RunningPool | None = None
        self._undo = ExitStack()

    # --- lifecycle -------------------------------------------------------------------------------------------

    def open(self) -> TestHarness:
        """Move the pool and enqueuers onto the harness' Redis and clock (what `with` does)."""
        if self._inline is not None:
            raise WorkqError("this TestHarness is open already")
        _check_lua(self.redis)
        with ExitStack() as undo:
            undo.enter_context(self.pool.configured(redis=self.redis, clock=self.clock))
            undo.callback(self.pool.stop)  # a pool the test started stops before its settings come back
            for enqueuer in self._enqueuers:
                if isinstance(enqueuer, AsyncEnqueuer):
                    undo.enter_context(enqueuer.configured(redis=self._async_redis(), clock=self.clock))
                else:
                    undo.enter_context(enqueuer.configured(redis=self.redis, clock=self.clock))
            inline = self.pool.build_inline()
            undo.callback(inline.close)
            inline.beat()
            inline.enqueue_cron()
            if self.eager:
                for enqueuer in {id(e): e for e in (self.pool.enqueuer, self.enqueuer, *self._enqueuers)}.values():
                    undo.callback(setattr, enqueuer, "on_enqueued", enqueuer.on_enqueued)
                    enqueuer.on_enqueued = self._run_eagerly
            self._undo = undo.pop_all()
        self._inline = inline
        return self

    def close(self) -> None:
        """Stop the pool if the test started it and give everything its own settings back; safe to call twice."""
        self._inline = None
        self._undo.close()

    def __enter__(self) -> TestHarness:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- running and time ------------------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """The fake clock's epoch seconds."""
        return self.clock.now

    def drain(self, max_runs: int = MAX_RUNS_PER_DRAIN) -> DrainResult:
        """Run every due job of the pool's names, one at a time in this thread, until none is due; jobs that
        fall due meanwhile (a retry with no delay) run too. The clock does not move."""
        return DrainResult.of(self._run_due(max_runs))

    def advance(self, seconds: float | None = None) -> None:
        """Move the clock `seconds` ahead (by default: to the next due time in the scheduled and retry sets, such
        as a retry's randomised backoff): cron ticks in between are added as a pool adds them (every one, however
        far the jump) and due scheduled and retry jobs go back to their queues. Eager: they run."""
        inline = self._opened()
        if seconds is None:
            inline.enqueue_cron()
            seconds = max(0.0, self._next_due() - self.clock.now)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < math.inf:
            raise ValueError(f"advance() takes a finite number of seconds >= 0, got {seconds!r}")
        target = self.clock.now + seconds
        while True:
            inline.enqueue_cron()  # fire times in (now, now + CRON_LOOKAHEAD]
            if self.clock.now >= target:
                break
            # A pool passes every two minutes; only passes whose window reaches a new fire time add anything.
            next_fire = inline.next_cron_fire(self.clock.now + CRON_LOOKAHEAD)
            self.clock.now = target if next_fire is None else min(target, next_fire - CRON_LOOKAHEAD)
        inline.requeue_due()
        if self.eager:
            _raise_first_failure(self._run_due(MAX_RUNS_PER_DRAIN))

    def _next_due(self) -> float:
        """The soonest due time in the scheduled and retry sets (now when both are empty)."""
        soonest: list[float] = []
        for zset in (self.client.keys.scheduled, self.client.keys.retry):
            soonest.extend(
                float(score)
                for _, score in cast(list[tuple[bytes, float]], self.redis.zrange(zset, 0, 0, withscores=True))
            )
        return min(soonest, default=self.clock.now)

    def _run_due(self, max_runs: int) -> list[Finished]:
        inline = self._opened()
        runs: list[Finished] = []
        inline.requeue_due()
        while True:
            run = inline.work_one()
            if run is None:
                if inline.requeue_due():
                    continue
                return runs
            runs.append(run)
            if run.outcome == "handed_back" and run.error is not None:
                raise run.error  # KeyboardInterrupt / SystemExit: the job is back on its queue
            if len(runs) >= max_runs:
                raise WorkqError(
                    f"drain ran {len(runs)} jobs and more are due: does a job reschedule itself with no delay? "
                    f"(last: {run.job.name} {run.job.id})"
                )

    def _run_eagerly(self, job_name: str) -> None:
        if job_name not in self.pool.job_names:
            raise WorkqError(
                f"eager TestHarness: the pool has no handler for job {job_name!r}, so it cannot run now; "
                f"it stays queued (see queued({job_name!r}))"
            )
        _raise_first_failure(self._run_due(MAX_RUNS_PER_DRAIN))

    def _opened(self) -> RunningPool:
        if self._inline is None:
            raise WorkqError("the TestHarness is not open: use `with TestHarness(pool) as h:` or h.open()")
        return self._inline

    # --- listing ---------------------------------------------------------------------------------------------

    def queued(self, name: str) -> list[Job]:
        """The jobs waiting in the queue of `name`, next to run first."""
        self._opened()
        return self.client.peek(name, count=2**62)

    def scheduled(self, name: str | None = None) -> list[ScheduledJob]:
        """Scheduled jobs (of `name` when given), soonest first; cron ticks of the coming minutes are among them."""
        return self._listed(self.client.scheduled_jobs, name)

    def retrying(self, name: str | None = None) -> list[RetryJob]:
        """Jobs waiting to be retried (of `name` when given), next retry first."""
        return self._listed(self.client.retry_jobs, name)

    def dead(self, name: str | None = None) -> list[DeadJob]:
        """Dead jobs (of `name` when given), most recently died first."""
        return self._listed(self.client.dead_jobs, name)

    def _listed(self, page_of: Callable[[int], tuple[list[_Listed], int]], name: str | None) -> list[_Listed]:
        self._opened()
        listed: list[_Listed] = []
        page = 1
        while True:
            jobs, total = page_of(page)
            listed.extend(jobs)
            if not jobs or len(listed) >= total:
                return [job for job in listed if name is None or job.name == name]
            page += 1


class HarnessFactory(Protocol):
    """The type of the `workq_harness` fixture: call it as you would construct a `TestHarness`; it comes open."""

    def __call__(
        self, pool: WorkerPool, *enqueuers: Enqueuer | AsyncEnqueuer, eager: bool = False, start: float | None = None
    ) -> TestHarness: ...


def _raise_first_failure(runs: list[Finished]) -> None:
    for run in runs:
        if run.error is not None:
            raise run.error


def _import_fakeredis() -> Any:
    try:
        import fakeredis  # noqa: PLC0415 - an optional dependency: the testing extra
    except ImportError as exc:
        raise ImportError(f"workq.testing needs fakeredis: {INSTALL_HINT}", name="fakeredis") from exc
    return fakeredis


def _check_lua(client: redis.Redis) -> None:
    """workq's operations are Lua scripts: refuse now, not at the first fetch, a fakeredis that cannot run them."""
    try:
        client.eval("return 1", 0)
    except redis.ResponseError as exc:
        raise ImportError(
            f"workq.testing runs workq's Lua scripts, but this fakeredis cannot ({exc}): {INSTALL_HINT}",
            name="lupa",
        ) from exc
