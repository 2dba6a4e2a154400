"""Middleware chains: registration order, code around next(), short-circuit and errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import cast

import pytest

from workq.event_loop import EventLoopThread
from workq.job import Job
from workq.middleware import (
    AsyncJobChain,
    AsyncNext,
    Handler,
    JobChain,
    Middleware,
    Next,
    build_chain,
    is_async_chain,
)


def recording(log: list[str], label: str) -> Middleware:
    def middleware(job: Job, next: Next) -> None:
        log.append(f"{label} before")
        next()
        log.append(f"{label} after")

    return middleware


def test_middlewares_run_in_registration_order_around_the_handler() -> None:
    log: list[str] = []
    chain = build_chain([recording(log, "first"), recording(log, "second")], lambda job: log.append("handler"))
    chain(Job(name="n"))
    assert log == ["first before", "second before", "handler", "second after", "first after"]


def test_without_middlewares_the_handler_runs() -> None:
    seen: list[Job] = []
    job = Job(name="n")
    build_chain([], seen.append)(job)
    assert seen == [job]


def test_every_middleware_and_the_handler_get_the_same_job() -> None:
    seen: list[Job] = []

    def remember(job: Job, next: Next) -> None:
        seen.append(job)
        next()

    job = Job(name="n")
    build_chain([remember, remember], seen.append)(job)
    assert seen == [job, job, job]


def test_middleware_not_calling_next_stops_the_chain() -> None:
    log: list[str] = []

    def stop(job: Job, next: Next) -> None:
        log.append("stop")

    build_chain([stop, recording(log, "later")], lambda job: log.append("handler"))(Job(name="n"))
    assert log == ["stop"]


def test_exception_from_a_middleware_propagates_and_skips_the_rest() -> None:
    log: list[str] = []

    def refuse(job: Job, next: Next) -> None:
        raise PermissionError("no")

    chain = build_chain([recording(log, "outer"), refuse], lambda job: log.append("handler"))
    with pytest.raises(PermissionError):
        chain(Job(name="n"))
    assert log == ["outer before"]


def test_exception_from_the_handler_reaches_the_middlewares() -> None:
    caught: list[BaseException] = []

    def catch(job: Job, next: Next) -> None:
        try:
            next()
        except ValueError as exc:
            caught.append(exc)
            raise

    def handler(job: Job) -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        build_chain([catch], handler)(Job(name="n"))
    assert len(caught) == 1


def test_a_middleware_may_change_the_job_before_the_handler() -> None:
    def tag(job: Job, next: Next) -> None:
        job.args["tagged"] = True
        next()

    seen: list[bool] = []
    build_chain([tag], lambda job: seen.append(job.arg_bool("tagged")))(Job(name="n"))
    assert seen == [True]


# --- sync and async layers mixed (issue 14) ------------------------------------------------------------------


@pytest.fixture
def event_loop_thread() -> Iterator[EventLoopThread]:
    loop = EventLoopThread(helper_threads=4)
    loop.start()
    yield loop
    loop.stop(5)


def run_chain(chain: JobChain | AsyncJobChain, loop: EventLoopThread, job: Job) -> None:
    """Run a chain as its executor would: an async one awaited on the loop, a sync one in this thread."""
    if is_async_chain(chain):
        loop.submit(cast(AsyncJobChain, chain)(job)).result(10)
    else:
        cast(JobChain, chain)(job)


def async_recording(log: list[str], label: str) -> Middleware:
    async def middleware(job: Job, next: AsyncNext) -> None:
        log.append(f"{label} before")
        await next()
        log.append(f"{label} after")

    return middleware


@pytest.mark.parametrize("async_handler", [True, False])
def test_sync_and_async_layers_keep_registration_order(event_loop_thread: EventLoopThread, async_handler: bool) -> None:
    log: list[str] = []

    async def handle_async(job: Job) -> None:
        log.append("handler")

    middlewares = [
        async_recording(log, "a1"),
        recording(log, "s1"),
        recording(log, "s2"),
        async_recording(log, "a2"),
    ]
    handler: Handler = handle_async if async_handler else (lambda job: log.append("handler"))
    chain = build_chain(middlewares, handler, event_loop_thread)
    assert is_async_chain(chain) is async_handler, "the chain is of the handler's kind"
    run_chain(chain, event_loop_thread, Job(name="n"))
    labels = ["a1", "s1", "s2", "a2"]
    assert log == [f"{m} before" for m in labels] + ["handler"] + [f"{m} after" for m in reversed(labels)]


def test_an_exception_crosses_every_layer_kind(event_loop_thread: EventLoopThread) -> None:
    seen: list[str] = []

    def sync_watch(job: Job, next: Next) -> None:
        try:
            next()
        except KeyError:
            seen.append("sync")
            raise

    async def async_watch(job: Job, next: AsyncNext) -> None:
        try:
            await next()
        except KeyError:
            seen.append("async")
            raise

    async def handler(job: Job) -> None:
        raise KeyError("x")

    chain = build_chain([async_watch, sync_watch, async_watch], handler, event_loop_thread)
    with pytest.raises(KeyError):
        run_chain(chain, event_loop_thread, Job(name="n"))
    assert seen == ["async", "sync", "async"]


def test_sync_layers_around_async_ones_run_in_helper_threads_not_on_the_loop(
    event_loop_thread: EventLoopThread,
) -> None:
    where: list[str] = []

    def sync_layer(job: Job, next: Next) -> None:
        where.append(threading.current_thread().name)
        next()

    async def handler(job: Job) -> None:
        where.append(threading.current_thread().name)

    run_chain(build_chain([sync_layer], handler, event_loop_thread), event_loop_thread, Job(name="n"))
    assert where[0].startswith("workq-loop-helper") and where[1] == "workq-event-loop"


def test_a_sync_middleware_returning_a_coroutine_raises_type_error() -> None:
    async def forgot(job: Job, next: Next) -> None:
        next()

    ran: list[str] = []
    plain = lambda job, next: forgot(job, next)  # noqa: E731, PLW0108 - a plain function returning a coroutine
    chain = build_chain([plain], lambda job: ran.append("handler"))
    with pytest.raises(TypeError, match="async def"):
        cast(JobChain, chain)(Job(name="n"))
    assert ran == []


def test_mixing_kinds_without_an_event_loop_is_refused() -> None:
    async def handler(job: Job) -> None:
        pass

    with pytest.raises(TypeError, match="event loop"):
        build_chain([recording([], "s")], handler)
