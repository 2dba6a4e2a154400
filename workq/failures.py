"""What a failed run becomes: retry after a backoff, dead, or dropped (`skip_dead`) — one rule for a handler that
raised, a run that passed its time limit, and a run whose lease expired because its pool died or stalled."""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from typing import Literal

from workq.backoff import default_backoff
from workq.handler import JobOptions
from workq.job import Job
from workq.keys import Keys

logger = logging.getLogger("workq")

MAX_BACKOFF = 10 * 365 * 86400
"""Longest delay a custom backoff may ask for (ten years); anything else falls back to the default curve."""


@dataclass(frozen=True)
class Refiling:
    """Where a failed job goes: `destination` (the retry or dead set, None = dropped) `delay` seconds from now."""

    destination: str | None
    delay: float
    filed: str
    """The job's JSON as filed (`fails`, `err`, `failed_at` updated; its unique lock no longer held)."""
    outcome: Literal["retry", "dead", "discarded"]
    verdict: str
    """For the log: "retrying in N s", "out of retries, moved to the dead queue"..."""


def refile_failed(
    job: Job, options: JobOptions, keys: Keys, rng: random.Random, *, err: str, now: float, retryable: bool = True
) -> Refiling:
    """Count one failure of `job` (updated in place) and say where it goes next; a failure that retrying cannot
    fix (`retryable=False`) goes dead at once."""
    job.fails += 1
    job.last_err = err
    job.failed_at = int(now)
    if retryable and job.fails < options.max_fails:
        delay = _backoff(job, options, rng)
        return Refiling(keys.retry, delay, refiled(job), "retry", f"retrying in {delay} s")
    ending = "out of retries" if retryable else "its args do not fit its task, not retried"
    if options.skip_dead:
        return Refiling(None, 0, refiled(job), "discarded", f"{ending}, discarded (skip_dead)")
    return Refiling(keys.dead, 0, refiled(job), "dead", f"{ending}, moved to the dead queue")


def refiled(job: Job) -> str:
    """The JSON of a job filed again after its run started (retry, rescheduled, dead): its unique lock, if it had
    one, was released when the run started, so this copy holds none and must release none (gocraft/work workers
    read `unique` the same way)."""
    job.unique = False
    return job.to_json()


def _backoff(job: Job, options: JobOptions, rng: random.Random) -> int:
    if options.backoff is None:
        return default_backoff(job, rng)
    try:
        delay = options.backoff(job)
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= MAX_BACKOFF:
            raise TypeError(f"backoff returned {delay!r}, not seconds between 0 and {MAX_BACKOFF}")
        return math.ceil(delay)
    except Exception:
        logger.exception("backoff for job %s failed; using the default", job.name)
        return default_backoff(job, rng)
