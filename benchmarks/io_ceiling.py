"""The I/O-bound job on a raw redis.asyncio loop with `IN_FLIGHT` tasks and nothing else, for context.

    python -m benchmarks.io_ceiling --space PREFIX

Each task loops LMOVE queue → in-progress list, awaits the I/O-bound job (`io_bound`: 50 ms on the loop, then the
round trip every system's handler makes), then LREM: a plain async consumer that never holds a job only in memory,
with three round trips per job and no batching. On an idle machine it comes close to IN_FLIGHT / IO_SECONDS; on a
busy one it shows how much of that the machine leaves reachable. Exits when the queue is empty.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import cast

import redis.asyncio

from benchmarks.apps.io_job import IN_FLIGHT, io_bound
from benchmarks.effect import REDIS_URL_ENV
from benchmarks.space import Space


async def drain(client: redis.asyncio.Redis, queue: str, in_progress: str) -> None:
    while True:
        payload = await client.lmove(queue, in_progress, "RIGHT", "LEFT")
        if payload is None:
            return
        await io_bound(int(json.loads(payload)["args"]["n"]))
        await client.lrem(in_progress, 1, cast(str, payload))  # the bytes moved: redis-py's annotation says str


async def drain_all(space: Space, redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await asyncio.gather(*(drain(client, space.raw_queue, space.raw_in_progress(0)) for _ in range(IN_FLIGHT)))
    finally:
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", required=True)
    parser.add_argument("--redis-url", default=os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/0"))
    options = parser.parse_args(argv)
    asyncio.run(drain_all(Space(options.space), options.redis_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
