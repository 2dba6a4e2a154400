"""The ceiling: the least a reliable Redis queue can do per job, as a raw redis-py loop.

    python -m benchmarks.ceiling --space PREFIX [--threads T]

Each thread loops LMOVE queue → its in-progress list, runs the benchmark job (`record_run`, the same round trip
every system's handler makes), then LREM from the in-progress list: three round trips, nothing held only in memory.
Exits when the queue is empty.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from typing import cast

import redis

from benchmarks.effect import REDIS_URL_ENV, record_run
from benchmarks.space import Space


def drain(client: redis.Redis, queue: str, in_progress: str) -> None:
    while True:
        payload = client.lmove(queue, in_progress, "RIGHT", "LEFT")
        if payload is None:
            return
        record_run(int(json.loads(payload)["args"]["n"]))
        client.lrem(in_progress, 1, cast(str, payload))  # the bytes popped: redis-py's annotation says str


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--redis-url", default=os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/0"))
    options = parser.parse_args(argv)
    space = Space(options.space)
    client = redis.Redis.from_url(options.redis_url)
    threads = [
        threading.Thread(target=drain, args=(client, space.raw_queue, space.raw_in_progress(index)))
        for index in range(options.threads)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
