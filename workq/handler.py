"""A registered job: its options (gocraft/work's JobOptions) and the decorated handler users keep calling."""

from __future__ import annotations

import collections.abc
import functools
import inspect
import math
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from workq.backoff import Backoff
from workq.job import Job, ScheduledJob

if TYPE_CHECKING:
    from workq.enqueuer import Enqueuer

MAX_PRIORITY = 100_000


@dataclass(frozen=True)
class JobOptions:
    """How a job name is fetched, limited and retried; validated when the job is registered."""

    priority: int = 1
    max_fails: int = 4
    skip_dead: bool = False
    max_concurrency: int = 0
    backoff: Backoff | None = None
    timeout: float = 0
    """Time limit of a run in seconds (0 = none): the run is interrupted with `JobTimeout` and counts as failed."""
    keep_result: float = 0
    """Seconds to keep a successful run's JSON return value at `result:<id>` (0 = keep nothing)."""

    def __post_init__(self) -> None:
        _check_int("priority", self.priority, 1, MAX_PRIORITY)
        _check_int("max_fails", self.max_fails, 1, None)
        _check_int("max_concurrency", self.max_concurrency, 0, None)
        if not isinstance(self.skip_dead, bool):
            raise TypeError(f"skip_dead must be a bool, got {type(self.skip_dead).__name__}")
        if self.backoff is not None and not callable(self.backoff):
            raise TypeError("backoff must be a callable taking the job and returning seconds")
        _check_seconds("timeout", self.timeout)
        _check_seconds("keep_result", self.keep_result)


def _check_seconds(option: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{option} must be a number of seconds >= 0 (0 = none), got {value!r}")


def _check_int(option: str, value: object, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{option} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        limit = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValueError(f"{option} must be {limit}, got {value}")


def is_async_callable(fn: object) -> bool:
    """Whether calling `fn` gives a coroutine to await: an `async def` function or method, a `functools.partial`
    of one, or an object whose class defines `async def __call__`."""
    return inspect.iscoroutinefunction(_call_target(fn))


def check_handler(name: str, fn: object) -> Callable[[Job], object]:
    """A handler is called as `fn(job)` (awaited when async); refuse at registration anything that cannot be."""
    check_runnable(f"handler for job {name!r}", fn, (Job(name=name),), "one argument, the Job")
    return cast(Callable[[Job], object], fn)


def check_runnable(what: str, fn: object, sample_args: tuple[object, ...], expected: str) -> None:
    """Raise `TypeError` for what workq cannot run as `fn(*sample_args)`: see `check_body_runs`, or a signature
    that does not take `sample_args`."""
    check_body_runs(what, fn)
    try:
        inspect.signature(cast(Callable[..., object], fn)).bind(*sample_args)  # callable: checked above
    except TypeError as exc:
        raise TypeError(f"{what} must accept {expected}: {exc}") from None
    except ValueError:
        pass  # builtins without a signature: trust them


def check_body_runs(what: str, fn: object) -> None:
    """Raise `TypeError` for what workq could call without its body ever running: not callable, a generator or
    async generator, a plain function declared to return an awaitable (workq would never await it: declare it
    `async def`)."""
    if not callable(fn):
        raise TypeError(f"{what} must be callable, got {type(fn).__name__}")
    target = _call_target(fn)
    if inspect.isasyncgenfunction(target):
        raise TypeError(f"{what} is an async generator: its body would never run; use `async def` without `yield`")
    if inspect.isgeneratorfunction(target):
        raise TypeError(f"{what} is a generator: its body would never run; use a plain function without `yield`")
    if not is_async_callable(fn) and _declares_awaitable(target):
        raise TypeError(
            f"{what} is a plain function declared to return an awaitable, which workq would never "
            "await: declare it `async def`"
        )


def _unwrap_partial(fn: object) -> object:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return fn


def _call_target(fn: object) -> object:
    """The function whose body a call of `fn` runs (for an object, its class's `__call__`)."""
    fn = _unwrap_partial(fn)
    if inspect.isroutine(fn) or isinstance(fn, type):
        return fn
    return cast(object, type(fn).__call__)


_AWAITABLE_NAMES = re.compile(r"^(typing\.|collections\.abc\.|asyncio\.)?(Awaitable|Coroutine|Future|Task)\b")


def _declares_awaitable(target: object) -> bool:
    try:
        annotation = inspect.signature(cast(Callable[..., object], target)).return_annotation
    except (TypeError, ValueError):
        return False
    if isinstance(annotation, str):
        return bool(_AWAITABLE_NAMES.match(annotation.strip()))
    origin = typing.get_origin(annotation) or annotation
    return isinstance(origin, type) and issubclass(origin, collections.abc.Awaitable)


class JobHandler:
    """What `@pool.job(...)` returns: still the plain function, plus `.enqueue(**args)` and `.enqueue_in`."""

    __name__: str
    __qualname__: str

    def __init__(
        self, name: str, fn: Callable[[Job], object], options: JobOptions, enqueuer: Callable[[], Enqueuer]
    ) -> None:
        functools.update_wrapper(self, fn)
        self.name = name
        self.fn = fn
        self.is_async = is_async_callable(fn)
        self.options = options
        self._enqueuer = enqueuer

    def __call__(self, job: Job) -> Any:
        return self.fn(job)

    def enqueue(self, /, **args: Any) -> Job:
        return self._enqueuer().enqueue(self.name, args)

    def enqueue_in(self, seconds: float, /, **args: Any) -> ScheduledJob:
        return self._enqueuer().enqueue_in(self.name, seconds, args)

    def __repr__(self) -> str:
        return f"<workq job {self.name!r} → {getattr(self.fn, '__qualname__', self.fn)!r}>"
