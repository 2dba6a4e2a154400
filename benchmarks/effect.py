"""The benchmark job's side effect, the same for every queue measured: it proves each run and times it.

Every handler (workq, RQ, Dramatiq, the raw ceiling loop) calls `record_run(number, stamp)` (async handlers —
workq's, arq's, saq's — await `record_run_async(number)`, the same round trip on redis.asyncio), which costs one round
trip: SADD of the job's number (a 0 reply is a duplicate run: then an INCR counts it) and, in latency runs, RPUSH
of `start - stamp` in the same pipeline. As cheap as a proof can be, so that the queues' own costs show; the harness
times processing by watching the set grow. Only redis-py and the standard library are imported here, because the
peers' workers import this module from another virtualenv.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass

import redis
import redis.asyncio

REDIS_URL_ENV = "WORKQ_BENCH_REDIS_URL"
RESULTS_ENV = "WORKQ_BENCH_RESULTS"
"""Environment of every worker process: where to record runs, and under which key prefix."""


@dataclass(frozen=True)
class ResultKeys:
    """The keys one measurement's handlers record into, all under `prefix`."""

    prefix: str

    @property
    def done(self) -> str:
        """Set of the numbers of the jobs that ran."""
        return f"{self.prefix}:done"

    @property
    def duplicates(self) -> str:
        """Counter of runs whose number was already in `done`."""
        return f"{self.prefix}:duplicates"

    @property
    def latencies(self) -> str:
        """List of handler start minus enqueue stamp, in seconds."""
        return f"{self.prefix}:latencies"

    def all(self) -> list[str]:
        return [self.done, self.duplicates, self.latencies]


_client: redis.Redis | None = None
_client_pid = 0
_client_lock = threading.Lock()


def _results_client() -> redis.Redis:
    """One client per process (a forked child builds its own: a socket must not be shared across a fork)."""
    global _client, _client_pid
    with _client_lock:
        if _client is None or _client_pid != os.getpid():
            _client = redis.Redis.from_url(os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/0"))
            _client_pid = os.getpid()
        return _client


def record_run(number: int, stamp: float | None = None) -> None:
    """Record that job `number` ran (and, with the enqueuer's `stamp`, how long after its enqueue it started)."""
    started = time.time()
    keys = ResultKeys(os.environ[RESULTS_ENV])
    client = _results_client()
    if stamp is None:
        added = client.sadd(keys.done, number)
    else:
        pipe = client.pipeline(transaction=False)
        pipe.sadd(keys.done, number)
        pipe.rpush(keys.latencies, repr(started - stamp))
        added = pipe.execute()[0]
    if added == 0:
        client.incr(keys.duplicates)


_async_clients: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}


async def record_run_async(number: int) -> None:
    """`record_run` for async handlers, without blocking their event loop: one client per loop."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = _async_clients[loop] = redis.asyncio.Redis.from_url(
            os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/0")
        )
    keys = ResultKeys(os.environ[RESULTS_ENV])
    if await client.sadd(keys.done, number) == 0:
        await client.incr(keys.duplicates)
