"""The benchmark jobs for saq on queue $WORKQ_BENCH_SAQ_QUEUE: `saq benchmarks.apps.saq_app.settings --quiet` runs
the I/O-bound job with `concurrency` = IN_FLIGHT (saq's in-flight limit), `saq benchmarks.apps.saq_app.noop_settings
--quiet` the no-op job with saq's defaults (concurrency 10). What a job keeps after its run (its `ttl`, 600 s by
default) is set by the producer."""

from __future__ import annotations

import os
from typing import Any

from saq import Queue

from benchmarks.apps.io_job import IN_FLIGHT, io_bound
from benchmarks.effect import REDIS_URL_ENV, record_run_async
from benchmarks.space import SAQ_QUEUE_ENV

queue = Queue.from_url(
    os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/0"), name=os.environ.get(SAQ_QUEUE_ENV, "default")
)


async def io(ctx: dict[str, Any], *, number: int) -> None:
    await io_bound(number)


async def noop(ctx: dict[str, Any], *, number: int, stamp: float | None = None) -> None:
    await record_run_async(number, stamp)


settings = {"queue": queue, "functions": [io], "concurrency": IN_FLIGHT}
noop_settings = {"queue": queue, "functions": [noop]}
