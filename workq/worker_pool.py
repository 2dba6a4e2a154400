"""WorkerPool: job registration and options, and the lifecycle of its worker threads and background loops."""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from workq import instrumentation
from workq.backoff import Backoff
from workq.clock import as_clock
from workq.connection import (
    RedisClient,
    check_namespace_fits,
    fit_connection_pool,
    resolve_namespace,
    resolve_redis,
    translated_faults,
)
from workq.enqueuer import Enqueuer
from workq.errors import WorkqError
from workq.event_loop import EventLoopThread
from workq.handler import JobHandler, JobOptions, check_handler, check_runnable, is_async_callable
from workq.job import Job, check_job_name
from workq.keys import Keys
from workq.log_format import job_context
from workq.middleware import Around, Middleware, build_chain, thread_chain
from workq.periodic import CronSchedule, check_cron_spec, zone_of
from workq.pool_context import InFlight
from workq.reconfigure import restored_afterwards
from workq.registration import Registration
from workq.running_pool import RunningPool
from workq.task import Task, job_handler
from workq.task_args import ArgSpec
from workq.throughput import RunTally

logger = logging.getLogger("workq")

DRAIN_POLL = 0.05
CONNECTIONS_PER_WORKER = 1
"""A worker thread holds no connection of its own (its pool's dispatch threads fetch for it); one each for handlers
that call `pool.redis` from every thread at once."""
SHARED_CONNECTIONS = 32
"""Connections a started pool may hold besides its worker threads': background loops, listeners, the dispatch
threads (two per executor, a connection each), and the app's own calls on `pool.redis` (a generous bound; idle
connections cost Redis little)."""

DEAD_AFTER_BEATS = 3
"""`dead_after` must span this many heartbeats: a pool that misses one or two (a GC pause, a slow network) is not
dead, and a reaper that thought so would run its jobs twice."""

HandlerFn = Callable[[Job], object]
P = ParamSpec("P")
R = TypeVar("R")


class WorkerPool:
    """`concurrency` threads running the registered jobs of one namespace, and for `async def` handlers one event
    loop running up to `async_concurrency` jobs at once.

    Register jobs with `@pool.job(...)` and middlewares with `@pool.middleware`, then `start()` (or `with pool:`).
    """

    def __init__(
        self,
        namespace: str | None = None,
        redis: RedisClient | str | None = None,
        concurrency: int = 10,
        *,
        async_concurrency: int = 100,
        heartbeat_interval: float = 5.0,
        dead_after: float | None = None,
        clock: Callable[[], float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        check_namespace_fits(redis, resolve_namespace(namespace))
        self._namespace = namespace
        self._redis_arg = redis
        self._client: RedisClient | None = None
        self._enqueuer: Enqueuer | None = None
        self.concurrency = _positive_int("concurrency", concurrency)
        self.async_concurrency = _positive_int("async_concurrency", async_concurrency)
        if heartbeat_interval <= 0:
            raise ValueError(f"heartbeat_interval must be > 0 seconds, got {heartbeat_interval}")
        self.heartbeat_interval = float(heartbeat_interval)
        self.dead_after = float(dead_after) if dead_after is not None else max(60.0, 12 * self.heartbeat_interval)
        if self.dead_after < DEAD_AFTER_BEATS * self.heartbeat_interval:
            raise ValueError(
                f"dead_after ({self.dead_after} s) must be at least {DEAD_AFTER_BEATS} heartbeats "
                f"({DEAD_AFTER_BEATS} x heartbeat_interval {self.heartbeat_interval} s): "
                "a pool that misses a beat or two is alive, not dead"
            )
        self.pool_id = secrets.token_hex(12)
        self._clock = as_clock(clock)
        self._rng = rng if rng is not None else random.Random()
        self._handlers: dict[str, JobHandler] = {}
        self._middlewares: list[Middleware] = []
        self._schedules: list[CronSchedule] = []
        self._stopping = threading.Event()
        self._in_flight = InFlight()
        self._running: RunningPool | None = None

    # --- configuration -------------------------------------------------------------------------------------

    def configure(
        self,
        *,
        namespace: str | None = None,
        redis: RedisClient | str | None = None,
        concurrency: int | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Override connection settings before `start()` (what `workq worker --redis-url ...` does); `clock`
        replaces Redis's clock as the source of "now" (see `workq.clock`)."""
        self._refuse_if_started("configure")
        check_namespace_fits(
            redis if redis is not None else self._redis_arg, resolve_namespace(namespace or self._namespace)
        )
        if namespace is not None:
            self._namespace = namespace
        if redis is not None:
            self._redis_arg = redis
            self._client = None
            self._enqueuer = None
        if concurrency is not None:
            self.concurrency = _positive_int("concurrency", concurrency)
        if clock is not None:
            self._clock = as_clock(clock)
            self._enqueuer = None

    @contextmanager
    def configured(
        self,
        *,
        namespace: str | None = None,
        redis: RedisClient | str | None = None,
        clock: Callable[[], float] | None = None,
    ) -> Iterator[None]:
        """`configure(...)` for the length of a `with` block, then exactly the settings (and client) before it."""
        with restored_afterwards(self, "_namespace", "_redis_arg", "_client", "_enqueuer", "_clock"):
            self.configure(namespace=namespace, redis=redis, clock=clock)
            yield
            if self._running is not None:
                raise WorkqError(
                    "the pool is still running at the end of its configured() block, on the block's settings: "
                    "stop() it inside the block"
                )

    @property
    def namespace(self) -> str:
        return resolve_namespace(self._namespace)

    @property
    def redis(self) -> RedisClient:
        if self._client is None:
            self._client = resolve_redis(self._redis_arg)
        return self._client

    @property
    def enqueuer(self) -> Enqueuer:
        """An Enqueuer on the pool's namespace and connection, used by `handler.enqueue(...)`."""
        if self._enqueuer is None or self._enqueuer.namespace != self.namespace:
            self._enqueuer = Enqueuer(self.namespace, self.redis, clock=self._clock)
        return self._enqueuer

    @property
    def job_names(self) -> list[str]:
        return sorted(self._handlers)

    @overload
    def job(
        self,
        name: str,
        fn: None = None,
        *,
        priority: int = ...,
        max_fails: int = ...,
        skip_dead: bool = ...,
        max_concurrency: int = ...,
        backoff: Backoff | None = ...,
        timeout: float = ...,
        keep_result: float = ...,
    ) -> Callable[[HandlerFn], JobHandler]: ...

    @overload
    def job(
        self,
        name: str,
        fn: HandlerFn,
        *,
        priority: int = ...,
        max_fails: int = ...,
        skip_dead: bool = ...,
        max_concurrency: int = ...,
        backoff: Backoff | None = ...,
        timeout: float = ...,
        keep_result: float = ...,
    ) -> JobHandler: ...

    def job(
        self,
        name: str,
        fn: HandlerFn | None = None,
        *,
        priority: int = 1,
        max_fails: int = 4,
        skip_dead: bool = False,
        max_concurrency: int = 0,
        backoff: Backoff | None = None,
        timeout: float = 0,
        keep_result: float = 0,
    ) -> JobHandler | Callable[[HandlerFn], JobHandler]:
        """Register `fn` as the handler of `name`, or return a decorator that does when `fn` is omitted.

        `timeout` is a time limit in seconds: a run past it is interrupted and counts as failed (see README, "Time
        limits"). `keep_result` keeps a successful run's JSON return value that many seconds (`Client.job_status`).
        """
        check_job_name(name)
        options = JobOptions(
            priority=priority,
            max_fails=max_fails,
            skip_dead=skip_dead,
            max_concurrency=max_concurrency,
            backoff=backoff,
            timeout=timeout,
            keep_result=keep_result,
        )

        def register(handler_fn: HandlerFn) -> JobHandler:
            self._refuse_if_started("register a job")
            if name in self._handlers:
                raise ValueError(f"job {name!r} is already registered on this pool")
            handler = JobHandler(name, check_handler(name, handler_fn), options, lambda: self.enqueuer)
            self._handlers[name] = handler
            return handler

        return register if fn is None else register(fn)

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...
    @overload
    def task(self, name: str | None = None, **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(
        self, name: Callable[P, R] | str | None = None, **options: Any
    ) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
        """Register a typed job function `fn(**params)` (sync or `async def`) as job `name` (default: its own
        name), with `pool.job`'s options. Its annotated parameters receive the job's args by name (see
        `workq.task_args`); args that do not fit file the job dead at once. Parameters that cannot be JSON args
        raise `TypeError` here. Usable bare (`@pool.task`) or called (`@pool.task(max_fails=2)`)."""
        if callable(name):
            return self.task()(name)

        def register(fn: Callable[P, R]) -> Task[P, R]:
            job_name = name if name is not None else str(getattr(fn, "__name__", ""))
            check_job_name(job_name)
            spec = ArgSpec(fn, job_name)
            self.job(job_name, job_handler(fn, spec), **options)
            return Task(job_name, fn, spec, lambda: self.enqueuer)

        return register

    def periodically_enqueue(self, spec: str, name: str, *, timezone: str | None = None) -> None:
        """Enqueue `name` at every fire time of the cron `spec`, once per tick however many pools run.

        Specs: 6 fields with seconds first (`*/10 * * * * *`), 5 standard fields, or `@hourly`-style descriptors,
        evaluated in `timezone` (an IANA name, e.g. "America/New_York"; default UTC, whatever the host's zone).
        An invalid spec or zone raises `ValueError` here, not later in a thread.
        """
        self._refuse_if_started("add a periodic job")
        self._schedules.append(CronSchedule(spec, name, timezone))

    def periodic(
        self, spec: str, name: str | None = None, *, timezone: str | None = None, **options: Any
    ) -> Callable[[HandlerFn], JobHandler]:
        """Decorator: register the function as job `name` (default: its own name) and enqueue it on `spec`."""
        check_cron_spec(spec)
        zone_of(timezone)

        def register(fn: HandlerFn) -> JobHandler:
            job_name = name if name is not None else str(getattr(fn, "__name__", ""))
            handler = self.job(job_name, fn, **options)
            self.periodically_enqueue(spec, job_name, timezone=timezone)
            return handler

        return register

    def middleware(self, fn: Middleware) -> Middleware:
        """Add `fn(job, next)` (or `async def fn(job, next)` that awaits `next()`) to the chain; middlewares run in
        registration order before the handler, sync and async mixed (see `workq.middleware`)."""
        self._refuse_if_started("add a middleware")
        check_runnable(f"middleware {_name_of(fn)}", fn, (Job(name="middleware-check"), _no_next), "(job, next)")
        self._middlewares.append(fn)
        return fn

    # --- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker threads and background loops; returns at once. Raises `ConnectionFailed` if Redis
        cannot be reached."""
        self._refuse_if_started("start")
        if not self._handlers:
            raise WorkqError("no jobs registered: add handlers with @pool.job(name) before start()")
        self._stopping = threading.Event()  # a fresh one: workers abandoned by a previous stop(grace) keep theirs
        logger.info(
            "worker pool %s starting: namespace=%r concurrency=%d async_concurrency=%d jobs=%s",
            self.pool_id,
            self.namespace,
            self.concurrency,
            self.async_concurrency,
            ",".join(self.job_names),
        )
        try:
            fit_connection_pool(
                self.redis, CONNECTIONS_PER_WORKER * self.concurrency + SHARED_CONNECTIONS, self._redis_arg
            )
        except ValueError as exc:
            raise WorkqError(str(exc)) from None
        with translated_faults(self.redis):
            running = self._build_running(self.concurrency, self._stopping)
            running.start()
        self._running = running

    def build_inline(self) -> RunningPool:
        """The pool as `start()` builds it, with one worker and no thread started, for the calling thread to drive
        step by step (`workq.testing`). It runs on the pool's connection, namespace and clock as they are now."""
        self._refuse_if_started("build an inline copy")
        if not self._handlers:
            raise WorkqError("no jobs registered: add handlers with @pool.job(name) first")
        with translated_faults(self.redis):
            return self._build_running(1, threading.Event(), inline=True)

    def _build_running(self, concurrency: int, stopping: threading.Event, inline: bool = False) -> RunningPool:
        """Inline, every chain is called in the calling thread (its async layers awaited on the event loop)."""
        keys = Keys(self.namespace)
        tally = RunTally(self.redis, keys, self.job_names, self._clock.wall)
        middlewares = [Around(tally.counting), Around(job_context), Around(instrumentation.running), *self._middlewares]
        event_loop = self._event_loop_if_needed()
        registrations = {}
        for name, handler in self._handlers.items():
            chain = build_chain(middlewares, handler.fn, event_loop)
            if inline:
                chain = thread_chain(chain, event_loop)
            registrations[name] = Registration.build(keys, self.pool_id, name, chain, handler.options)
        return RunningPool(
            client=self.redis,
            keys=keys,
            pool_id=self.pool_id,
            registrations=registrations,
            schedules=self._schedules,
            concurrency=concurrency,
            async_concurrency=self.async_concurrency,
            event_loop=event_loop,
            heartbeat_interval=self.heartbeat_interval,
            dead_after=self.dead_after,
            clock=self._clock,
            rng=self._rng,
            stopping=stopping,
            in_flight=self._in_flight,
            tally=tally,
        )

    def _event_loop_if_needed(self) -> EventLoopThread | None:
        """One event loop for this run of the pool, if any handler or middleware is async; its helper threads run
        the sync layers of mixed chains (at most one per job in flight)."""
        layers = [handler.fn for handler in self._handlers.values()] + list(self._middlewares)
        if not any(is_async_callable(layer) for layer in layers):
            return None
        return EventLoopThread(helper_threads=self.concurrency + self.async_concurrency)

    def request_stop(self) -> None:
        """Stop fetching new jobs without waiting (safe from a signal handler); `stop()` then waits."""
        self._stopping.set()
        running = self._running
        if running is not None:
            running.wake_all()

    @property
    def stuck_runs(self) -> int:
        """Runs abandoned past their time limit whose threads have not returned (a C call that does not give control
        back); `workq worker --processes` replaces a process that has any."""
        return 0 if self._running is None else self._running.stuck_runs

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wait_for_stop_request(self, timeout: float | None = None) -> bool:
        """Block until `request_stop()` (or a handler raising SystemExit/KeyboardInterrupt); True if requested."""
        return self._stopping.wait(timeout)

    def stop(self, grace: float | None = None) -> None:
        """Stop fetching and let in-flight jobs finish, then stop the background loops and deregister the pool.

        With `grace`, wait at most that many seconds: jobs still running then go back on their queues (they may
        run twice; the abandoned handler threads are daemons and die with the process).
        """
        if self._running is None:
            return
        self._running.stop(grace)
        self._running = None
        logger.info("worker pool %s stopped: jobs=%s", self.pool_id, ",".join(self.job_names))

    def drain(self, timeout: float | None = None) -> None:
        """Return once this pool's queues are empty and no job is in flight; `TimeoutError` after `timeout` s.

        Jobs waiting in the retry or scheduled sets are not waited for.
        """
        if self._running is None:
            raise WorkqError("drain() needs a started pool")
        deadline = None if timeout is None else time.monotonic() + timeout
        queue_keys = [Keys(self.namespace).queue(name) for name in self._handlers]
        while True:
            pipe = self.redis.pipeline(transaction=False)
            for key in queue_keys:
                pipe.llen(key)
            with translated_faults(self.redis):
                queued = sum(pipe.execute())
            # Queues first, then workers: a job popped after the read is counted by the worker holding it.
            if queued == 0 and self._in_flight.count == 0:
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"drain: {queued} queued, {self._in_flight.count} in flight after {timeout} s")
            time.sleep(DRAIN_POLL)

    def __enter__(self) -> WorkerPool:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _refuse_if_started(self, action: str) -> None:
        if self._running is not None:
            raise WorkqError(f"cannot {action} on a running pool; stop() it first")


def _no_next() -> None:
    """Stands for `next` when a middleware's signature is checked at registration."""


def _name_of(fn: object) -> str:
    return str(getattr(fn, "__qualname__", None) or type(fn).__qualname__)


def _positive_int(option: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{option} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{option} must be >= 1, got {value}")
    return value
