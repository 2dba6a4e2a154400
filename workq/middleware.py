"""Middleware: `fn(job, next)` (or `async def fn(job, next)` that awaits `next()`) wraps everything after it; the
chain ends in the job's handler.

Sync and async layers mix freely, in registration order. Each layer runs where its kind runs: `async def` layers
on the pool's event loop, plain ones in a thread. Where the kind changes, the chain crosses over: a sync layer
around async ones runs in one of the loop's helper threads and its `next()` blocks that thread until the async rest
of the chain is done on the loop; an async layer around sync ones awaits them in a helper thread. So a sync
middleware keeps its meaning (code before and after `next()`, `try/finally`, exceptions both ways) around an
async handler, and the loop is never blocked by sync code.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from workq.handler import is_async_callable
from workq.job import Job

if TYPE_CHECKING:
    from workq.event_loop import EventLoopThread

Next = Callable[[], None]
AsyncNext = Callable[[], Awaitable[None]]
Middleware = Callable[[Job, Next], None] | Callable[[Job, AsyncNext], Awaitable[None]]
Handler = Callable[[Job], object]

JobChain = Callable[[Job], None]
"""A chain whose outer layer is sync: called in a thread."""
AsyncJobChain = Callable[[Job], Coroutine[Any, Any, None]]
"""A chain whose outer layer is async: awaited on the pool's event loop."""


@dataclass(frozen=True)
class Around:
    """A middleware written once, as a context manager around the rest of the chain (`enter(job)`), that runs in
    the chain's own kind: `with enter(job): next()` around sync layers, `await next()` around async ones, never a
    crossing. workq's own middlewares that wrap every chain (run tally, log context) are `Around`s."""

    enter: Callable[[Job], AbstractContextManager[object]]

    def __call__(self, job: Job, next: Next) -> None:
        with self.enter(job):
            next()


class MixedChainNeedsLoop(TypeError):
    """A chain mixing sync and async layers was built without the event loop that runs it."""


def build_chain(
    middlewares: Sequence[Middleware], handler: Handler, loop: EventLoopThread | None = None
) -> JobChain | AsyncJobChain:
    """Compose once at pool start: middlewares run in registration order, the handler last. The chain is of the
    handler's kind (an `AsyncJobChain` for an `async def` handler, awaited on the loop; else called in a worker
    thread), whatever its middlewares are: an async handler counts against `async_concurrency`, a sync one
    against `concurrency`.

    A middleware that returns without calling `next` stops the chain (the job counts as done); one that raises
    fails the job like a raising handler. A sync layer that returns an awaitable fails the run with `TypeError`
    (its coroutine would otherwise never run).
    """
    chain: JobChain | AsyncJobChain = (
        _call_async_handler(handler) if is_async_callable(handler) else _call_handler(handler)
    )
    for middleware in reversed(middlewares):
        if isinstance(middleware, Around):
            chain = _around(middleware, chain)
        elif is_async_callable(middleware):
            chain = _wrap_async(cast(Callable[[Job, AsyncNext], Awaitable[None]], middleware), _as_async(chain, loop))
        else:
            chain = _wrap(cast(Callable[[Job, Next], object], middleware), _as_sync(chain, loop))
    return _as_async(chain, loop) if is_async_callable(handler) else _as_sync(chain, loop)


def is_async_chain(chain: JobChain | AsyncJobChain) -> bool:
    return inspect.iscoroutinefunction(chain)


def _call_handler(handler: Handler) -> JobChain:
    def run(job: Job) -> None:
        job._returned = handler(job)  # beside the chain (middlewares return None), for keep_result
        refuse_awaitable(job._returned, handler, "handler")

    return run


def _call_async_handler(handler: Handler) -> AsyncJobChain:
    async def run(job: Job) -> None:
        job._returned = await cast(Awaitable[object], handler(job))

    return run


def _wrap(middleware: Callable[[Job, Next], object], inner: JobChain) -> JobChain:
    def run(job: Job) -> None:
        refuse_awaitable(middleware(job, lambda: inner(job)), middleware, "middleware")

    return run


def _wrap_async(middleware: Callable[[Job, AsyncNext], Awaitable[None]], inner: AsyncJobChain) -> AsyncJobChain:
    async def run(job: Job) -> None:
        await middleware(job, lambda: inner(job))

    return run


def _around(middleware: Around, inner: JobChain | AsyncJobChain) -> JobChain | AsyncJobChain:
    """Straight `with enter(job):` around the inner chain, sync or async: workq's own layers run on every job, so
    they skip `_wrap`'s closure and awaitable check (an `Around` returns nothing)."""
    enter = middleware.enter
    if not is_async_chain(inner):
        sync_inner = cast(JobChain, inner)

        def run_sync(job: Job) -> None:
            with enter(job):
                sync_inner(job)

        return run_sync
    async_inner = cast(AsyncJobChain, inner)

    async def run(job: Job) -> None:
        with enter(job):
            await async_inner(job)

    return run


def thread_chain(chain: JobChain | AsyncJobChain, loop: EventLoopThread | None) -> JobChain:
    """`chain` as called from a thread: an async one is run on `loop` and waited for."""
    return _as_sync(chain, loop)


def _as_sync(chain: JobChain | AsyncJobChain, loop: EventLoopThread | None) -> JobChain:
    if not is_async_chain(chain):
        return cast(JobChain, chain)
    async_chain = cast(AsyncJobChain, chain)
    on_loop = _needed(loop)

    def run(job: Job) -> None:
        on_loop.call_on_loop(async_chain, job)

    return run


def _as_async(chain: JobChain | AsyncJobChain, loop: EventLoopThread | None) -> AsyncJobChain:
    if is_async_chain(chain):
        return cast(AsyncJobChain, chain)
    sync_chain = cast(JobChain, chain)
    on_loop = _needed(loop)

    async def run(job: Job) -> None:
        await on_loop.call_in_thread(sync_chain, job)

    return run


def _needed(loop: EventLoopThread | None) -> EventLoopThread:
    if loop is None:
        raise MixedChainNeedsLoop("a chain mixing sync and async layers needs the pool's event loop")
    return loop


def refuse_awaitable(result: object, fn: object, role: str) -> None:
    """A sync layer handed back an awaitable: its work would silently never run. Fail the run loudly instead."""
    if not inspect.isawaitable(result):
        return
    if inspect.iscoroutine(result):
        result.close()  # no "never awaited" warning on top of the error
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    raise TypeError(
        f"{role} {name} is a plain function but returned {type(result).__name__}, which workq would never await: "
        f"declare it `async def` (or give it an `async def __call__`)"
    )
