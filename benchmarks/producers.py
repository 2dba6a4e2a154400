"""Producers of the benchmark job, one per system, run as a subprocess of that system's interpreter:

    python -m benchmarks.producers SYSTEM MODE --space PREFIX --jobs N [--first K] [--rate R]

SYSTEM is workq, rq, dramatiq, arq, saq or raw (redis-py LPUSH of a workq-shaped JSON payload). MODE:
- `one`: one enqueue call per job, timed; `many`: the system's bulk enqueue, timed;
- `fill`: fill the queue as fast as the system allows (untimed; the processing benchmarks start from a full queue);
- `paced`: one job every 1/R s carrying `time.time()` as its enqueue stamp (the latency benchmark);
- `warmup`: one job numbered -1 (a running worker's proof of life).
Prints one JSON object: jobs, seconds, and Redis round trips (socket writes) per job for `one` and `many`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
import redis.connection

from benchmarks.effect import REDIS_URL_ENV
from benchmarks.space import DRAMATIQ_NAMESPACE_ENV, RQ_PREFIX_ENV, RQ_QUEUE, Space

RAW_CHUNK = 1000
"""Payloads per LPUSH in the raw bulk producer (workq's enqueue_many uses the same)."""
FILL_CHUNK = 10_000


class BulkNotSupported(Exception):
    """The system has no bulk enqueue."""


@dataclass
class Producer:
    """How one system enqueues: a job at a time (with an optional enqueue stamp), or a batch of numbers."""

    one: Callable[[int, float | None], object]
    many: Callable[[range], object]


def workq_producer(space: Space, redis_url: str) -> Producer:
    from benchmarks.apps.workq_app import JOB_NAME  # noqa: PLC0415 (only this system's interpreter has it)
    from workq import Enqueuer  # noqa: PLC0415 (only this system's interpreter has it)

    enqueuer = Enqueuer(space.workq_namespace, redis_url)

    def one(number: int, stamp: float | None) -> object:
        return enqueuer.enqueue(JOB_NAME, {"n": number} if stamp is None else {"n": number, "t": stamp})

    def many(numbers: range) -> object:
        return enqueuer.enqueue_many(JOB_NAME, [{"n": number} for number in numbers])

    return Producer(one, many)


def rq_producer(space: Space, redis_url: str) -> Producer:
    os.environ[RQ_PREFIX_ENV] = space.rq_prefix  # read by rq when it is imported
    from rq import Queue  # noqa: PLC0415 (only this system's interpreter has it)

    from benchmarks.apps.rq_app import NOOP  # noqa: PLC0415 (only this system's interpreter has it)

    queue = Queue(RQ_QUEUE, connection=redis.Redis.from_url(redis_url))

    def one(number: int, stamp: float | None) -> object:
        return queue.enqueue(NOOP, number) if stamp is None else queue.enqueue(NOOP, number, stamp)

    def many(numbers: range) -> object:
        return queue.enqueue_many([Queue.prepare_data(NOOP, (number,)) for number in numbers])

    return Producer(one, many)


def dramatiq_producer(space: Space, redis_url: str) -> Producer:
    os.environ[DRAMATIQ_NAMESPACE_ENV] = space.dramatiq_namespace  # read when the app module builds its broker
    os.environ[REDIS_URL_ENV] = redis_url
    from benchmarks.apps.dramatiq_app import noop  # noqa: PLC0415 (only this system's interpreter has it)

    def one(number: int, stamp: float | None) -> object:
        return noop.send(number) if stamp is None else noop.send(number, stamp)

    def many(numbers: range) -> object:
        raise BulkNotSupported("dramatiq has no bulk enqueue")

    return Producer(one, many)


def arq_producer(space: Space, redis_url: str) -> Producer:
    """arq's `enqueue_job`, on an event loop of the producer's own; job ids under our prefix, so clean-up finds
    arq's per-job keys."""
    from arq import create_pool  # noqa: PLC0415 (only this system's interpreter has it)
    from arq.connections import RedisSettings  # noqa: PLC0415 (only this system's interpreter has it)

    loop = asyncio.new_event_loop()
    pool = loop.run_until_complete(create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=space.arq_queue))

    def one(number: int, stamp: float | None) -> object:
        return loop.run_until_complete(pool.enqueue_job("io", number, _job_id=f"{space.prefix}:{number}"))

    def many(numbers: range) -> object:
        raise BulkNotSupported("arq has no bulk enqueue")

    return Producer(one, many)


def saq_producer(space: Space, redis_url: str) -> Producer:
    from saq import Queue  # noqa: PLC0415 (only this system's interpreter has it)

    loop = asyncio.new_event_loop()
    queue = Queue.from_url(redis_url, name=space.saq_queue)
    loop.run_until_complete(queue.connect())

    def one(number: int, stamp: float | None) -> object:
        return loop.run_until_complete(queue.enqueue("io", number=number))

    def many(numbers: range) -> object:
        raise BulkNotSupported("saq's bulk call is `map`, which waits for the results")

    return Producer(one, many)


def raw_payload(number: int) -> str:
    """A job as workq writes it (same fields, same size), built with the standard json module."""
    job = {"name": "noop", "id": secrets.token_hex(12), "t": int(time.time()), "args": {"n": number}}
    return json.dumps(job, separators=(",", ":"))


def raw_producer(space: Space, redis_url: str) -> Producer:
    client = redis.Redis.from_url(redis_url)

    def one(number: int, stamp: float | None) -> object:
        return client.lpush(space.raw_queue, raw_payload(number))

    def many(numbers: range) -> object:
        pipe = client.pipeline(transaction=False)
        payloads = [raw_payload(number) for number in numbers]
        for start in range(0, len(payloads), RAW_CHUNK):
            pipe.lpush(space.raw_queue, *payloads[start : start + RAW_CHUNK])
        return pipe.execute()

    return Producer(one, many)


PRODUCERS: dict[str, Callable[[Space, str], Producer]] = {
    "workq": workq_producer,
    "rq": rq_producer,
    "dramatiq": dramatiq_producer,
    "arq": arq_producer,
    "saq": saq_producer,
    "raw": raw_producer,
}


def count_round_trips() -> list[int]:
    """Count socket writes of every redis-py connection in this process: one per command or pipeline sent."""
    writes = [0]
    connection_class: Any = redis.connection.AbstractConnection
    send = connection_class.send_packed_command

    def counted(self: Any, command: Any, check_health: bool = True) -> None:
        writes[0] += 1
        send(self, command, check_health)

    connection_class.send_packed_command = counted
    return writes


def produce(producer: Producer, mode: str, *, first: int, jobs: int, rate: float, writes: list[int]) -> dict[str, Any]:
    numbers = range(first, first + jobs)
    if mode == "fill":
        started = time.perf_counter()
        for start in range(first, first + jobs, FILL_CHUNK):
            chunk = range(start, min(start + FILL_CHUNK, first + jobs))
            try:
                producer.many(chunk)
            except BulkNotSupported:
                for number in chunk:
                    producer.one(number, None)
        return {"jobs": jobs, "seconds": time.perf_counter() - started}
    if mode == "paced":
        started = time.perf_counter()
        for index, number in enumerate(numbers):
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            producer.one(number, time.time())
        return {"jobs": jobs, "seconds": time.perf_counter() - started}
    writes_before = writes[0]
    started = time.perf_counter()
    if mode == "one":
        for number in numbers:
            producer.one(number, None)
    else:
        producer.many(numbers)
    seconds = time.perf_counter() - started
    return {"jobs": jobs, "seconds": seconds, "round_trips_per_job": (writes[0] - writes_before) / jobs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("system", choices=sorted(PRODUCERS))
    parser.add_argument("mode", choices=["one", "many", "fill", "paced", "warmup"])
    parser.add_argument("--space", required=True, help="the measurement's key prefix")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--first", type=int, default=0, help="number of the first job")
    parser.add_argument("--rate", type=float, default=200.0, help="jobs per second in paced mode")
    parser.add_argument("--redis-url", default=os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/0"))
    options = parser.parse_args(argv)
    writes = count_round_trips()
    producer = PRODUCERS[options.system](Space(options.space), options.redis_url)
    if options.mode in ("one", "many", "warmup"):
        producer.one(-1, None)  # connect, load scripts, register the name: not part of the timed loop
    if options.mode == "warmup":
        result: dict[str, Any] = {"jobs": 1}
    else:
        try:
            result = produce(
                producer, options.mode, first=options.first, jobs=options.jobs, rate=options.rate, writes=writes
            )
        except BulkNotSupported as exc:
            result = {"unsupported": str(exc)}
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
