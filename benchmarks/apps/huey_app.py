"""The benchmark job for Huey: `huey_consumer benchmarks.apps.huey_app.huey` (Redis storage; its queue is
`huey.redis.<$WORKQ_BENCH_HUEY_NAME>`, the name kept as given so that the harness can delete its keys).

Every setting is Huey's default (results kept, blocking dequeue); the consumer's flags choose the worker threads.
"""

from __future__ import annotations

import os

from huey import RedisHuey

from benchmarks.effect import REDIS_URL_ENV, record_run
from benchmarks.space import HUEY_NAME_ENV

huey = RedisHuey(
    os.environ.get(HUEY_NAME_ENV, "bench"),
    url=os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/0"),
    clean_name=False,
)


@huey.task()  # type: ignore[untyped-decorator]  # Huey has no type hints
def noop(number: int, stamp: float | None = None) -> None:
    record_run(number, stamp)
