"""The type of the `make_pool` fixture, and how tests tell whether a pool's threads are still running."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from workq import WorkerPool


class PoolFactory(Protocol):
    """`make_pool(concurrency, **WorkerPool options)` → a WorkerPool on the test's namespace, stopped at teardown."""

    def __call__(self, concurrency: int = 1, **options: Any) -> WorkerPool: ...


def workq_threads() -> set[threading.Thread]:
    """Live threads started by workq pools (worker and background-loop threads are all named `workq-…`)."""
    return {thread for thread in threading.enumerate() if thread.name.startswith("workq-") and thread.is_alive()}
