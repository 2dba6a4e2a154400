"""The job of `benchmarks.observability_cost` and `benchmarks.job_control_cost`: a handler that does nothing, so a
worker's own costs per job show. Its options (e.g. `{"keep_result": 60}`) come as JSON in $WORKQ_BENCH_NOOP_OPTIONS.
Imports only `workq`, so the same file runs against older trees of it."""

from __future__ import annotations

import json
import os
from typing import Any

from workq import Job, WorkerPool

pool = WorkerPool(concurrency=10)
OPTIONS: dict[str, Any] = json.loads(os.environ.get("WORKQ_BENCH_NOOP_OPTIONS") or "{}")


def noop(job: Job) -> None:
    """Nothing: the run is counted by the ack script's daily stats."""


pool.job("noop", noop, max_fails=1, **OPTIONS)
