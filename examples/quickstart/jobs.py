"""The quickstart's jobs. Run them for real with `workq worker examples.quickstart.jobs:pool`."""

from __future__ import annotations

import threading
from collections.abc import Callable

from workq import Job, WorkerPool, backoff

pool = WorkerPool(concurrency=4)
_print_lock = threading.Lock()


def say(line: str) -> None:
    with _print_lock:
        print(line, flush=True)


@pool.middleware
def report(job: Job, next: Callable[[], None]) -> None:
    """Print every attempt and its outcome: middlewares wrap every handler."""
    attempt = job.fails + 1
    try:
        next()
    except Exception as exc:
        say(f"  ✗ {job.name} {job.args} attempt {attempt} failed: {exc}")
        raise
    say(f"  ✓ {job.name} {job.args} done on attempt {attempt}")


@pool.job("send_welcome", keep_result=60)
def send_welcome(job: Job) -> None:
    address = job.arg_str("address")
    if (problem := job.arg_error()) is not None:
        raise problem
    if "@" not in address:
        raise ValueError(f"not an email address: {address!r}")


@pool.job("charge_card", max_fails=3, backoff=backoff.exponential(first=1), keep_result=60)
def charge_card(job: Job) -> None:
    """Fails its first attempt (a flaky payment gateway), then succeeds on the retry."""
    if job.fails == 0:
        raise ConnectionError("gateway timed out")


@pool.job("resize_image", max_fails=2, backoff=lambda job: 1, keep_result=60)
def resize_image(job: Job) -> None:
    """Always fails: after 2 attempts the job lands in the dead queue, where it can be retried or deleted."""
    raise ValueError(f"cannot decode {job.arg_str('path')}")
