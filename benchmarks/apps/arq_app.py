"""The benchmark jobs for arq: `python -m benchmarks.apps.arq_app [--max-jobs N] [--poll-delay S]` runs a worker on
queue $WORKQ_BENCH_ARQ_QUEUE with every setting arq's default but those given: the I/O-bound job runs with
`--max-jobs` IN_FLIGHT (arq's in-flight limit); the no-op job with arq's defaults (max_jobs 10, results kept an hour)
and with `--poll-delay`: arq reads at most `queue_read_limit` (100) jobs per poll and sleeps `poll_delay` (0.5 s)
between polls, which caps it near 200 jobs/s and delays a job up to half a second, so that is the setting a busy
deployment lowers. Logging at WARNING, as every worker measured (arq's CLI would log two lines per job)."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any, ClassVar

from arq.connections import RedisSettings
from arq.worker import run_worker

from benchmarks.apps.io_job import io_bound
from benchmarks.effect import REDIS_URL_ENV, record_run_async
from benchmarks.space import ARQ_QUEUE_ENV


async def io(ctx: dict[str, Any], number: int) -> None:
    await io_bound(number)


async def noop(ctx: dict[str, Any], number: int, stamp: float | None = None) -> None:
    await record_run_async(number, stamp)


class WorkerSettings:
    functions: ClassVar = [io, noop]
    redis_settings = RedisSettings.from_dsn(os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/0"))
    queue_name = os.environ.get(ARQ_QUEUE_ENV, "arq:queue")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-jobs", type=int, default=None)
    parser.add_argument("--poll-delay", type=float, default=None)
    given = {name: value for name, value in vars(parser.parse_args()).items() if value is not None}
    logging.basicConfig(level=logging.WARNING)
    run_worker(WorkerSettings, **given)
