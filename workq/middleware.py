"""Middleware: `fn(job, next)` wraps everything after it; the chain ends in the job's handler."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from workq.job import Job

Next = Callable[[], None]
Middleware = Callable[[Job, Next], None]
Handler = Callable[[Job], object]


def build_chain(middlewares: Sequence[Middleware], handler: Handler) -> Callable[[Job], None]:
    """Compose once at pool start: middlewares run in registration order, the handler last.

    A middleware that returns without calling `next` stops the chain (the job counts as done); one that raises
    fails the job like a raising handler.
    """
    chain: Callable[[Job], None] = _call_handler(handler)
    for middleware in reversed(middlewares):
        chain = _wrap(middleware, chain)
    return chain


def _call_handler(handler: Handler) -> Callable[[Job], None]:
    def run(job: Job) -> None:
        job._returned = handler(job)  # beside the chain: middlewares return None

    return run


def _wrap(middleware: Middleware, inner: Callable[[Job], None]) -> Callable[[Job], None]:
    def run(job: Job) -> None:
        middleware(job, lambda: inner(job))

    return run
