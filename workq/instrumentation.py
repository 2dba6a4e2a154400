"""Process-wide hooks for optional integrations (`workq.otel`): a middleware every pool's chains call, a context
manager around the write of every enqueue (`Enqueuer` and `workq.aio.AsyncEnqueuer` alike), and fields for each
`--log-format json` line.

Installed at any time, they reach pools and enqueuers built before or after, even running ones: each run and each
enqueue looks the hook up as it starts. Nothing installed costs a run one global lookup and a call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

from workq.job import Job
from workq.middleware import Middleware, Next

EnqueueHook = Callable[[Sequence[Job]], AbstractContextManager[object]]
"""Entered around the write of `jobs` (one name, at least one job) before any of them is serialised: it may set
fields of theirs (`Job.extra`), and it sees the error (`ConnectionFailed`, `MaybeEnqueued`) of a failed write."""

LogFields = Callable[[], dict[str, str]]
"""Fields for the JSON log line being written in the current thread or task (e.g. the current trace and span)."""

_run_hook: Middleware | None = None
_enqueue_hook: EnqueueHook | None = None
_log_fields: LogFields | None = None


def install(*, run: Middleware, enqueue: EnqueueHook, log_fields: LogFields) -> None:
    """Make `run` a middleware of every pool (inside the run tally and the log context, outside the pool's own
    middlewares), `enqueue` wrap every enqueue, and `log_fields` add to JSON log lines. Replaces what was installed."""
    global _run_hook, _enqueue_hook, _log_fields
    _run_hook, _enqueue_hook, _log_fields = run, enqueue, log_fields


def uninstall() -> None:
    global _run_hook, _enqueue_hook, _log_fields
    _run_hook = _enqueue_hook = _log_fields = None


def run_hook(job: Job, next: Next) -> None:
    """The built-in middleware through which the installed run hook, if any, wraps each run."""
    hook = _run_hook
    if hook is None:
        next()
    else:
        hook(job, next)


def enqueuing(jobs: Sequence[Job]) -> AbstractContextManager[object]:
    hook = _enqueue_hook
    return nullcontext() if hook is None else hook(jobs)


def log_fields() -> dict[str, str]:
    hook = _log_fields
    return {} if hook is None else hook()
