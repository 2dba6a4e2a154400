"""The no-op benchmark job for arq: `python -m benchmarks.apps.arq_noop_app [--poll-delay S]` runs a worker on
queue $WORKQ_BENCH_ARQ_QUEUE with arq's defaults (max_jobs 10, results kept an hour), or with `poll_delay` S instead
of 0.5 s: arq reads at most `queue_read_limit` (100) jobs per poll and sleeps `poll_delay` between polls, which caps
it near 200 jobs/s and delays a job up to half a second, so that is the setting a busy deployment lowers. Its
logging at WARNING, as every worker measured (arq's CLI would log two lines per job)."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any, ClassVar

from arq.connections import RedisSettings
from arq.worker import run_worker

from benchmarks.effect import REDIS_URL_ENV, record_run_async
from benchmarks.space import ARQ_QUEUE_ENV


async def noop(ctx: dict[str, Any], number: int, stamp: float | None = None) -> None:
    await record_run_async(number, stamp)


class WorkerSettings:
    functions: ClassVar = [noop]
    redis_settings = RedisSettings.from_dsn(os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/0"))
    queue_name = os.environ.get(ARQ_QUEUE_ENV, "arq:queue")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--poll-delay", type=float, default=None)
    poll_delay = parser.parse_args().poll_delay
    logging.basicConfig(level=logging.WARNING)
    run_worker(WorkerSettings, **({} if poll_delay is None else {"poll_delay": poll_delay}))  # type: ignore[arg-type]
