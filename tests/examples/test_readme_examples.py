"""README examples that must stay true: the middleware example runs as written and sees each attempt with its
outcome, and the WorkerPool parameter table names every parameter `WorkerPool()` accepts."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support import wait_until
from workq import Job, Retry, WorkerPool

README = Path(__file__).resolve().parents[2] / "README.md"


def _block_after(marker: str) -> str:
    text = README.read_text(encoding="utf-8")
    assert marker in text, f"README.md lost its {marker} marker"
    return text.split(marker, 1)[1].split("```", 2)[1].removeprefix("python\n")


def _table_after(marker: str) -> list[str]:
    """The first cell of each row of the table after `marker`, without its backticks."""
    text = README.read_text(encoding="utf-8").split(marker, 1)[1]
    rows = [line for line in text.split("\n\n", 1)[0].splitlines() if line.startswith("| `")]
    return [row.split("|")[1].strip().strip("`") for row in rows]


class Metrics:
    def __init__(self) -> None:
        self.observed: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()

    def observe(self, name: str, outcome: str, attempt: int, seconds: float) -> None:
        with self.lock:
            self.observed.append((name, outcome, attempt))


def test_the_middleware_example_records_every_attempt_and_outcome(namespace: str, redis_url: str) -> None:
    pool = WorkerPool(namespace, redis_url, concurrency=1)
    metrics = Metrics()
    exec(
        _block_after("<!-- middleware-example"),
        {"pool": pool, "metrics": metrics, "Job": Job, "Callable": Callable, "Retry": Retry},
    )
    runs: dict[str, int] = {}

    def flaky(job: Job) -> None:
        runs[job.id] = runs.get(job.id, 0) + 1
        if runs[job.id] == 1:
            raise RuntimeError("first run fails")
        if runs[job.id] == 2:
            raise Retry(in_seconds=0)

    pool.job("flaky", flaky, backoff=lambda job: 0)
    with pool:
        pool.enqueuer.enqueue("flaky")
        wait_until(lambda: len(metrics.observed) == 3, timeout=20, what="three runs of the job")
    assert metrics.observed == [("flaky", "failed", 1), ("flaky", "rescheduled", 2), ("flaky", "ok", 2)]


def test_every_worker_pool_parameter_is_documented() -> None:
    documented = _table_after("<!-- worker-pool-parameters")
    parameters: dict[str, Any] = dict(inspect.signature(WorkerPool.__init__).parameters)
    parameters.pop("self")
    assert documented == list(parameters), "the README's WorkerPool table and WorkerPool() disagree"
