"""The I/O-bound benchmark job for saq: `saq benchmarks.apps.saq_app.settings --quiet` runs a worker on queue
$WORKQ_BENCH_SAQ_QUEUE with `concurrency` = IN_FLIGHT (saq's in-flight limit), every other setting saq's default."""

from __future__ import annotations

import os
from typing import Any

from saq import Queue

from benchmarks.apps.io_job import IN_FLIGHT, io_bound
from benchmarks.effect import REDIS_URL_ENV
from benchmarks.space import SAQ_QUEUE_ENV

queue = Queue.from_url(
    os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/0"), name=os.environ.get(SAQ_QUEUE_ENV, "default")
)


async def io(ctx: dict[str, Any], *, number: int) -> None:
    await io_bound(number)


settings = {"queue": queue, "functions": [io], "concurrency": IN_FLIGHT}
