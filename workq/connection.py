"""Turning `redis=` arguments and environment defaults into a client, and Redis faults into workq errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from workq.errors import ConnectionFailed

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
DEFAULT_NAMESPACE = "workq"

REDIS_FAULTS: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)


def resolve_namespace(namespace: str | None) -> str:
    return os.environ.get("WORKQ_NAMESPACE", DEFAULT_NAMESPACE) if namespace is None else namespace


def resolve_redis(client_or_url: redis.Redis | str | None) -> redis.Redis:
    """Use a given client as is; build one from a URL, else from `WORKQ_REDIS_URL`, else localhost."""
    if isinstance(client_or_url, redis.Redis):
        return client_or_url
    url = client_or_url if client_or_url is not None else os.environ.get("WORKQ_REDIS_URL", DEFAULT_REDIS_URL)
    if not isinstance(url, str):
        raise TypeError(f"redis must be a redis.Redis client or a URL string, got {type(url).__name__}")
    try:
        if url.startswith("unix://"):
            return redis.Redis.from_url(url, health_check_interval=30)
        return redis.Redis.from_url(url, health_check_interval=30, socket_keepalive=True)
    except ValueError as exc:
        raise ValueError(f"invalid Redis URL {url!r}: {exc}") from None


def describe(client: redis.Redis) -> str:
    """Where a client points, for error messages (never includes a password)."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


@contextmanager
def translated_faults(client: redis.Redis) -> Iterator[None]:
    """Re-raise redis-py connection faults as `ConnectionFailed` naming the server."""
    try:
        yield
    except REDIS_FAULTS as exc:
        raise ConnectionFailed(f"cannot reach Redis at {describe(client)}: {exc}") from exc
