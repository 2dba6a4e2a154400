"""Pools that the topology tests run as `workq worker topologies.app:<factory>` subprocesses.

`make_recording_pool`: job `record` counts its runs per `n` argument in a tally Redis of its own
($WORKQ_TOPOLOGY_TALLY_URL), which no failover of the Redis under test can roll back.
`make_noop_pool`: job `noop` does nothing (throughput measurements, ACL checks).
"""

from __future__ import annotations

import os
import time

import redis

from workq import Job, WorkerPool

TALLY_ENV = "WORKQ_TOPOLOGY_TALLY_URL"
RUNS = "runs"
"""Tally hash: n → how many times a `record` job with that `n` ran."""
FIRST_RUN_AT = "first_run_at"
"""Tally hash: n → epoch seconds of its first run."""


def make_recording_pool() -> WorkerPool:
    pool = WorkerPool(concurrency=8)
    tally = redis.Redis.from_url(os.environ[TALLY_ENV])

    @pool.job("record", max_fails=25, backoff=lambda job: 1)
    def record(job: Job) -> None:
        n = str(job.arg_int("n"))
        pipe = tally.pipeline(transaction=False)
        pipe.hincrby(RUNS, n, 1)
        pipe.hsetnx(FIRST_RUN_AT, n, time.time())
        pipe.execute()

    return pool


def make_noop_pool() -> WorkerPool:
    pool = WorkerPool(concurrency=10)

    @pool.job("noop")
    def noop(job: Job) -> None:
        pass

    return pool
