"""The I/O-bound benchmark job for arq: `python -m benchmarks.apps.arq_app` runs a worker on queue
$WORKQ_BENCH_ARQ_QUEUE with `max_jobs` = IN_FLIGHT (arq's in-flight limit), every other setting arq's default; its
logging at WARNING, as every worker measured (arq's CLI would log two lines per job)."""

from __future__ import annotations

import logging
import os
from typing import Any, ClassVar

from arq.connections import RedisSettings
from arq.worker import run_worker

from benchmarks.apps.io_job import IN_FLIGHT, io_bound
from benchmarks.effect import REDIS_URL_ENV
from benchmarks.space import ARQ_QUEUE_ENV


async def io(ctx: dict[str, Any], number: int) -> None:
    await io_bound(number)


class WorkerSettings:
    functions: ClassVar = [io]
    redis_settings = RedisSettings.from_dsn(os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/0"))
    queue_name = os.environ.get(ARQ_QUEUE_ENV, "arq:queue")
    max_jobs = IN_FLIGHT


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    run_worker(WorkerSettings)  # type: ignore[arg-type]
