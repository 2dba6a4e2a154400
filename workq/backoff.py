"""Retry delays: gocraft/work's default curve, and what a custom `backoff` may return."""

from __future__ import annotations

import random
from collections.abc import Callable

from workq.job import Job

Backoff = Callable[[Job], int]


def default_backoff(job: Job, rng: random.Random | None = None) -> int:
    """`fails⁴ + 15 + randint(0, 29) × (fails + 1)` seconds: 16–74 s after the first failure, hours by the 10th."""
    chooser = rng if rng is not None else random
    return job.fails**4 + 15 + chooser.randint(0, 29) * (job.fails + 1)


def exponential(base: float = 2.0, *, first: int = 1, cap: int = 3600) -> Backoff:
    """A simpler curve: `first × base^(fails-1)` seconds, at most `cap`."""

    def delay(job: Job) -> int:
        try:
            return int(min(cap, first * base ** max(job.fails - 1, 0)))
        except OverflowError:
            return cap

    return delay
