"""TestHarness with `async def` handlers and middleware (issue 14): drain awaits them on the pool's event loop,
sync and async layers in registration order, outcomes as for sync handlers, and no thread left after close."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from integration.pool_factory import workq_threads

from testing.conftest import START, UNREACHABLE
from workq import Job, Retry, WorkerPool
from workq.aio import AsyncEnqueuer
from workq.testing import TestHarness


def test_drain_runs_async_handlers_through_sync_and_async_middleware(pool: WorkerPool) -> None:
    log: list[str] = []

    @pool.middleware
    def sync_layer(job: Job, next: Callable[[], None]) -> None:
        log.append("sync before")
        next()
        log.append("sync after")

    @pool.middleware
    async def async_layer(job: Job, next: Callable[[], Awaitable[None]]) -> None:
        log.append("async before")
        await next()
        log.append("async after")

    @pool.job("fetch")
    async def fetch(job: Job) -> None:
        await asyncio.sleep(0)
        log.append(f"fetch {job.arg_str('url')}")

    @pool.job("later")
    async def later(job: Job) -> None:
        raise Retry(in_seconds=60)

    threads_before = workq_threads()
    with TestHarness(pool, start=START) as h:
        done = fetch.enqueue(url="a")
        assert h.drain().processed[0].id == done.id
        assert log == ["sync before", "async before", "fetch a", "async after", "sync after"]
        rescheduled = later.enqueue()
        assert [job.id for job in h.drain().rescheduled] == [rescheduled.id]
    assert workq_threads() == threads_before, "close() stops the event loop and its helper threads"


def test_eager_mode_raises_an_async_handlers_exception_to_the_caller(pool: WorkerPool) -> None:
    @pool.job("boom")
    async def boom(job: Job) -> None:
        raise ValueError("no")

    with TestHarness(pool, start=START, eager=True), pytest.raises(ValueError, match="no"):
        boom.enqueue()


def test_an_async_enqueuer_awaited_in_the_apps_own_loop_runs_async_tasks_eagerly(pool: WorkerPool) -> None:
    greeted: list[str] = []

    @pool.task()
    async def greet(name: str) -> None:
        await asyncio.sleep(0)
        if name == "":
            raise ValueError("empty name")
        greeted.append(name)

    web = AsyncEnqueuer(pool.namespace, UNREACHABLE)  # what a FastAPI app would hold

    async def request_handlers() -> None:  # the test's loop runs this; the pool's own loop runs greet
        await greet.using(web).enqueue("ada")
        assert greeted == ["ada"]
        with pytest.raises(ValueError, match="empty name"):
            await web.enqueue("greet", {"name": ""})

    with TestHarness(pool, web, eager=True, start=START) as h:
        asyncio.run(request_handlers())
        assert [job.last_err for job in h.retrying()] == ["ValueError: empty name"]
