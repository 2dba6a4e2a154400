"""What each part of `Client` works through: one namespace's Redis connection, its keys and the clock."""

from __future__ import annotations

from collections.abc import Callable

from workq.clock import as_clock
from workq.connection import RedisClient, check_namespace_fits, resolve_namespace, resolve_redis
from workq.keys import Keys


class NamespaceHandle:
    """The namespace, Redis connection (a client or URL; defaults from the environment), keys and clock."""

    def __init__(
        self,
        namespace: str | None = None,
        redis: RedisClient | str | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.namespace = resolve_namespace(namespace)
        check_namespace_fits(redis, self.namespace)
        self.redis = resolve_redis(redis)
        self.keys = Keys(self.namespace)
        self._time = as_clock(clock)
        self._clock = self._time.wall  # times shown to people and filed on retried jobs
