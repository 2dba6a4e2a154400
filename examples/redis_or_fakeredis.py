"""What the examples run on: the Redis at $WORKQ_REDIS_URL (default redis://localhost:6379/0), or, when none
answers, an in-process fakeredis, so an example runs on a machine without a Redis server."""

from __future__ import annotations

import os
from typing import Any

import redis


def connect() -> tuple[redis.Redis, Any]:
    """A sync client (a pool's, a Client's) and what an AsyncEnqueuer takes: the URL, or a fakeredis client of the
    same in-process server."""
    url = os.environ.get("WORKQ_REDIS_URL", "redis://localhost:6379/0")
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        import fakeredis  # noqa: PLC0415 - a dev dependency, needed only without Redis

        print(f"No Redis answers at {url}: running on an in-process fakeredis instead.")
        server = fakeredis.FakeServer()
        return fakeredis.FakeRedis(server=server), fakeredis.FakeAsyncRedis(server=server)
    print(f"Using Redis at {url}.")
    return client, url
