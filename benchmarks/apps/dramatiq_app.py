"""The benchmark actor for `dramatiq benchmarks.apps.dramatiq_app` (Redis broker, keys under $WORKQ_BENCH_DRAMATIQ_NS).

Importing this module sets the global broker, for the worker and the producer alike.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from benchmarks.effect import REDIS_URL_ENV, record_run
from benchmarks.space import DRAMATIQ_NAMESPACE_ENV, DRAMATIQ_QUEUE

broker = RedisBroker(
    url=os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/0"),
    namespace=os.environ.get(DRAMATIQ_NAMESPACE_ENV, "dramatiq"),
)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=DRAMATIQ_QUEUE, max_retries=0)  # type: ignore[untyped-decorator]  # no stubs here
def noop(number: int, stamp: float | None = None) -> None:
    record_run(number, stamp)
