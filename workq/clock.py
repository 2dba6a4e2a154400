"""Where "now" comes from.

Every decision that compares times taken on different hosts — lease deadlines, heartbeat ages, due times, cron
windows — reads Redis's clock (`TIME`, inside the scripts where it can), so hosts whose clocks disagree by seconds
or minutes still agree on it. A test (or the testing harness) may inject a clock instead; it then drives every one
of those decisions, scripts included, so a fake clock never has to race a real one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Union

from workq.connection import RedisClient

if TYPE_CHECKING:
    from redis.asyncio import Redis as AsyncRedis
    from redis.asyncio import RedisCluster as AsyncRedisCluster

ClockLike = Union["Clock", Callable[[], float], None]


class Clock:
    """Redis's clock, unless `injected` is given."""

    def __init__(self, injected: Callable[[], float] | None = None) -> None:
        self._injected = injected

    @property
    def is_injected(self) -> bool:
        return self._injected is not None

    def script_now(self) -> str | float:
        """The `now` argument of a script: '' makes the script read Redis `TIME` itself."""
        return "" if self._injected is None else self._injected()

    def server_now(self, client: RedisClient) -> float:
        """Now on Redis's clock (one `TIME` round trip), or the injected clock."""
        if self._injected is not None:
            return self._injected()
        return _seconds(client.time())

    async def server_now_async(self, client: AsyncRedis | AsyncRedisCluster) -> float:
        """`server_now` through a redis.asyncio client."""
        if self._injected is not None:
            return self._injected()
        return _seconds(await client.time())

    def wall(self) -> float:
        """This host's clock (or the injected one), for what only people read: `t`, `failed_at`, stats days."""
        return time.time() if self._injected is None else self._injected()


def as_clock(clock: ClockLike) -> Clock:
    """A `Clock` from what a caller passed: a Clock, a function returning epoch seconds, or None (Redis's clock)."""
    if isinstance(clock, Clock):
        return clock
    if clock is not None and not callable(clock):
        raise TypeError(f"clock must be a function returning epoch seconds, got {type(clock).__name__}")
    return Clock(clock)


def _seconds(time_reply: tuple[int, int]) -> float:
    """Redis `TIME` (seconds, microseconds) as epoch seconds."""
    seconds, microseconds = time_reply
    return int(seconds) + int(microseconds) / 1_000_000
