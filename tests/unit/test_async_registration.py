"""Registration of async handlers and middleware: what can run is accepted (and known to be async), what cannot
is refused with TypeError at the call, not silently accepted (before issue 14 an async generator or a wrong-arity
async middleware registered fine and never ran)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any

import fakeredis
import pytest

from workq.handler import is_async_callable
from workq.job import Job
from workq.worker_pool import WorkerPool


@pytest.fixture
def pool(fake_redis: fakeredis.FakeRedis, namespace: str) -> WorkerPool:
    return WorkerPool(namespace, fake_redis)


async def async_handler(job: Job) -> None:
    pass


async def tagged(tag: str, job: Job) -> None:
    pass


class AsyncCallable:
    async def __call__(self, job: Job) -> None:
        pass


class Service:
    async def handle(self, job: Job) -> None:
        pass


@pytest.mark.parametrize(
    "fn",
    [
        async_handler,
        functools.partial(tagged, "t"),
        AsyncCallable(),
        Service().handle,
        functools.partial(AsyncCallable()),
    ],
    ids=["async def", "partial of async def", "object with async __call__", "bound async method", "partial of object"],
)
def test_async_handlers_of_every_form_are_accepted_as_async(pool: WorkerPool, fn: Callable[[Job], object]) -> None:
    handler = pool.job("a", fn)
    assert handler.is_async and is_async_callable(fn)


def test_plain_handlers_are_not_async(pool: WorkerPool) -> None:
    assert not pool.job("a", lambda job: None).is_async
    assert not is_async_callable(print)


async def async_generator(job: Job) -> AsyncIterator[None]:
    yield None


def generator(job: Job) -> Iterator[None]:
    yield None


class AsyncGeneratorCall:
    async def __call__(self, job: Job) -> AsyncIterator[None]:
        yield None


def declared_awaitable(job: Job) -> Awaitable[None]:
    return async_handler(job)


def declared_coroutine(job: Job) -> Coroutine[Any, Any, None]:
    return async_handler(job)


async def two_params(job: Job, extra: int) -> None:
    pass


async def no_params() -> None:
    pass


@pytest.mark.parametrize(
    ("fn", "says"),
    [
        (async_generator, "async generator"),
        (functools.partial(async_generator), "async generator"),
        (AsyncGeneratorCall(), "async generator"),
        (generator, "generator"),
        (declared_awaitable, "async def"),
        (declared_coroutine, "async def"),
        (two_params, "one argument"),
        (no_params, "one argument"),
        ("not callable", "callable"),
    ],
)
def test_handlers_that_cannot_run_are_refused_at_registration(pool: WorkerPool, fn: object, says: str) -> None:
    with pytest.raises(TypeError, match=says):
        pool.job("a", fn)  # type: ignore[arg-type]
    assert pool.job_names == []


async def async_middleware(job: Job, next: Callable[[], Awaitable[None]]) -> None:
    await next()


def test_async_middleware_is_accepted(pool: WorkerPool) -> None:
    assert pool.middleware(async_middleware) is async_middleware


async def async_generator_middleware(job: Job, next: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
    yield None


async def one_param_middleware(job: Job) -> None:
    pass


def declared_awaitable_middleware(job: Job, next: Callable[[], None]) -> Awaitable[None]:
    return async_middleware(job, next)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fn", "says"),
    [
        (async_generator_middleware, "async generator"),
        (one_param_middleware, r"\(job, next\)"),
        (declared_awaitable_middleware, "async def"),
        (42, "callable"),
    ],
)
def test_middleware_that_cannot_run_is_refused(pool: WorkerPool, fn: object, says: str) -> None:
    with pytest.raises(TypeError, match=says):
        pool.middleware(fn)  # type: ignore[arg-type]


def test_async_concurrency_must_be_a_positive_int(fake_redis: fakeredis.FakeRedis) -> None:
    with pytest.raises(ValueError, match="async_concurrency"):
        WorkerPool("ns", fake_redis, async_concurrency=0)
    with pytest.raises(TypeError, match="async_concurrency"):
        WorkerPool("ns", fake_redis, async_concurrency=1.5)  # type: ignore[arg-type]
    assert WorkerPool("ns", fake_redis).async_concurrency == 100
