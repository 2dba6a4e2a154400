"""Process-wide hooks for optional integrations (`workq.otel`): a context manager around every run (the rest of
each pool's chain, sync or async), one around the write of every enqueue (`Enqueuer` and
`workq.aio.AsyncEnqueuer` alike), and fields for each `--log-format json` line.

Installed at any time, they reach pools and enqueuers built before or after, even running ones: each run and each
enqueue looks the hook up as it starts. Nothing installed costs a run a global lookup and a `nullcontext`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

from workq.job import Job

RunHook = Callable[[Job], AbstractContextManager[object]]
"""Entered around the rest of a run's chain, in the run's own thread or task (so a context it sets is current in
the handler); it sees what the run raises."""
EnqueueHook = Callable[[Sequence[Job]], AbstractContextManager[object]]
"""Entered around the write of `jobs` (one name, at least one job) before any of them is serialised: it may set
fields of theirs (`Job.extra`), and it sees the error (`ConnectionFailed`, `MaybeEnqueued`) of a failed write."""

LogFields = Callable[[], dict[str, str]]
"""Fields for the JSON log line being written in the current thread or task (e.g. the current trace and span)."""

_run_hook: RunHook | None = None
_enqueue_hook: EnqueueHook | None = None
_log_fields: LogFields | None = None
_NOTHING = nullcontext()
"""Reusable and reentrant: entering it does nothing."""


def install(*, run: RunHook, enqueue: EnqueueHook, log_fields: LogFields) -> None:
    """Make `run` wrap every run (inside the run tally and the log context, outside the pool's own middlewares),
    `enqueue` every enqueue, and `log_fields` add to JSON log lines. Replaces what was installed."""
    global _run_hook, _enqueue_hook, _log_fields
    _run_hook, _enqueue_hook, _log_fields = run, enqueue, log_fields


def uninstall() -> None:
    global _run_hook, _enqueue_hook, _log_fields
    _run_hook = _enqueue_hook = _log_fields = None


def running(job: Job) -> AbstractContextManager[object]:
    """Around the rest of every chain (a built-in `workq.middleware.Around`): the installed run hook, if any."""
    hook = _run_hook
    return _NOTHING if hook is None else hook(job)


def enqueuing(jobs: Sequence[Job]) -> AbstractContextManager[object]:
    hook = _enqueue_hook
    return _NOTHING if hook is None else hook(jobs)


def log_fields() -> dict[str, str]:
    hook = _log_fields
    return {} if hook is None else hook()
