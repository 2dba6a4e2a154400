"""Typed job functions (`@pool.task`): a function of typed parameters registered as a job, whose `.enqueue(...)` is
typed from its signature (ParamSpec), so mypy rejects a wrong argument name or type at the call site."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from workq.handler import check_body_runs, is_async_callable
from workq.job import Job, ScheduledJob
from workq.task_args import ArgSpec

if TYPE_CHECKING:
    from workq.aio.enqueuer import AsyncEnqueuer
    from workq.enqueuer import Enqueuer

P = ParamSpec("P")
R = TypeVar("R")


class Task(Generic[P, R]):
    """What `@pool.task` returns: calling it calls the function; `.enqueue(...)` takes the function's own
    arguments (positional ones are sent by their parameter's name) and enqueues a job with them as args.

    `.enqueue*` use the pool's Enqueuer (its namespace and Redis); `.using(enqueuer)` enqueues through another, an
    `AsyncEnqueuer` included (then the calls are awaited). Arguments are checked against the annotations before
    Redis is touched (`TypeError`).
    """

    __name__: str
    __qualname__: str

    def __init__(self, name: str, fn: Callable[P, R], spec: ArgSpec, enqueuer: Callable[[], Enqueuer]) -> None:
        functools.update_wrapper(self, fn)
        self.name = name
        self.fn = fn
        self._spec = spec
        self._enqueuer = enqueuer

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Enqueue a run of this task now."""
        return self.using(self._enqueuer()).enqueue(*args, **kwargs)

    def enqueue_in(self, seconds: float, /, *args: P.args, **kwargs: P.kwargs) -> ScheduledJob:
        """Enqueue a run of this task no earlier than `seconds` from now."""
        return self.using(self._enqueuer()).enqueue_in(seconds, *args, **kwargs)

    def enqueue_unique(self, *args: P.args, **kwargs: P.kwargs) -> Job | None:
        """Enqueue unless a run with the same args is queued or scheduled (then None)."""
        return self.using(self._enqueuer()).enqueue_unique(*args, **kwargs)

    def enqueue_unique_in(self, seconds: float, /, *args: P.args, **kwargs: P.kwargs) -> ScheduledJob | None:
        """`enqueue_unique`, delayed like `enqueue_in`."""
        return self.using(self._enqueuer()).enqueue_unique_in(seconds, *args, **kwargs)

    def enqueue_unique_by_key(self, key: dict[str, Any], /, *args: P.args, **kwargs: P.kwargs) -> Job | None:
        """Unique by `key`; while one is pending, a later call replaces the args it runs with (then None)."""
        return self.using(self._enqueuer()).enqueue_unique_by_key(key, *args, **kwargs)

    def enqueue_unique_in_by_key(
        self, seconds: float, key: dict[str, Any], /, *args: P.args, **kwargs: P.kwargs
    ) -> ScheduledJob | None:
        """`enqueue_unique_by_key`, delayed like `enqueue_in`."""
        return self.using(self._enqueuer()).enqueue_unique_in_by_key(seconds, key, *args, **kwargs)

    @overload
    def using(self, enqueuer: Enqueuer) -> TaskEnqueuer[P]: ...
    @overload
    def using(self, enqueuer: AsyncEnqueuer) -> AsyncTaskEnqueuer[P]: ...

    def using(self, enqueuer: Enqueuer | AsyncEnqueuer) -> TaskEnqueuer[P] | AsyncTaskEnqueuer[P]:
        """This task's typed enqueue calls through `enqueuer` (another namespace, or an `AsyncEnqueuer`)."""
        from workq.aio.enqueuer import AsyncEnqueuer  # noqa: PLC0415 (workq.aio is only loaded where it is used)

        if isinstance(enqueuer, AsyncEnqueuer):
            return AsyncTaskEnqueuer(self.name, self._spec, enqueuer)
        return TaskEnqueuer(self.name, self._spec, enqueuer)

    def __repr__(self) -> str:
        return f"<workq task {self.name!r} → {getattr(self.fn, '__qualname__', self.fn)!r}>"


class TaskEnqueuer(Generic[P]):
    """A task's typed enqueue calls on one `Enqueuer`."""

    def __init__(self, name: str, spec: ArgSpec, enqueuer: Enqueuer) -> None:
        self._name = name
        self._spec = spec
        self._enqueuer = enqueuer

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        return self._enqueuer.enqueue(self._name, self._spec.to_args(args, kwargs))

    def enqueue_in(self, seconds: float, /, *args: P.args, **kwargs: P.kwargs) -> ScheduledJob:
        return self._enqueuer.enqueue_in(self._name, seconds, self._spec.to_args(args, kwargs))

    def enqueue_unique(self, *args: P.args, **kwargs: P.kwargs) -> Job | None:
        return self._enqueuer.enqueue_unique(self._name, self._spec.to_args(args, kwargs))

    def enqueue_unique_in(self, seconds: float, /, *args: P.args, **kwargs: P.kwargs) -> ScheduledJob | None:
        return self._enqueuer.enqueue_unique_in(self._name, seconds, self._spec.to_args(args, kwargs))

    def enqueue_unique_by_key(self, key: dict[str, Any], /, *args: P.args, **kwargs: P.kwargs) -> Job | None:
        return self._enqueuer.enqueue_unique_by_key(self._name, self._spec.to_args(args, kwargs), key)

    def enqueue_unique_in_by_key(
        self, seconds: float, key: dict[str, Any], /, *args: P.args, **kwargs: P.kwargs
    ) -> ScheduledJob | None:
        return self._enqueuer.enqueue_unique_in_by_key(self._name, seconds, self._spec.to_args(args, kwargs), key)


class AsyncTaskEnqueuer(Generic[P]):
    """A task's typed enqueue calls on one `AsyncEnqueuer`, as coroutines."""

    def __init__(self, name: str, spec: ArgSpec, enqueuer: AsyncEnqueuer) -> None:
        self._name = name
        self._spec = spec
        self._enqueuer = enqueuer

    async def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        return await self._enqueuer.enqueue(self._name, self._spec.to_args(args, kwargs))

    async def enqueue_in(self, seconds: float, /, *args: P.args, **kwargs: P.kwargs) -> ScheduledJob:
        return await self._enqueuer.enqueue_in(self._name, seconds, self._spec.to_args(args, kwargs))

    async def enqueue_unique(self, *args: P.args, **kwargs: P.kwargs) -> Job | None:
        return await self._enqueuer.enqueue_unique(self._name, self._spec.to_args(args, kwargs))

    async def enqueue_unique_in(self, seconds: float, /, *args: P.args, **kwargs: P.kwargs) -> ScheduledJob | None:
        return await self._enqueuer.enqueue_unique_in(self._name, seconds, self._spec.to_args(args, kwargs))

    async def enqueue_unique_by_key(self, key: dict[str, Any], /, *args: P.args, **kwargs: P.kwargs) -> Job | None:
        return await self._enqueuer.enqueue_unique_by_key(self._name, self._spec.to_args(args, kwargs), key)

    async def enqueue_unique_in_by_key(
        self, seconds: float, key: dict[str, Any], /, *args: P.args, **kwargs: P.kwargs
    ) -> ScheduledJob | None:
        args_json = self._spec.to_args(args, kwargs)
        return await self._enqueuer.enqueue_unique_in_by_key(self._name, seconds, args_json, key)


def job_handler(fn: Callable[..., Any], spec: ArgSpec) -> Callable[[Job], Any]:
    """The `fn(job)` handler the pool runs for a task: binds the job's args to `fn`'s parameters (`ArgsMismatch`
    when they do not fit), then calls it — an `async def` handler for an async function. What the pool could not
    run (a generator, a plain function declared to return an awaitable) is refused with `TypeError`."""
    check_body_runs(f"task {spec.task_name!r}", fn)
    if is_async_callable(fn):
        async_fn: Callable[..., Awaitable[Any]] = fn

        async def run_async(job: Job) -> Any:
            return await async_fn(**spec.to_params(job.args, f"{job.name} {job.id}"))

        return run_async

    def run(job: Job) -> Any:
        return fn(**spec.to_params(job.args, f"{job.name} {job.id}"))

    return run
