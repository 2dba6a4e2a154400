"""Read-only access to one namespace's keys, spelled out as wire-format.md names them (not via workq.keys)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import redis


@dataclass(frozen=True)
class Filed:
    """A member of the retry, scheduled or dead sorted set."""

    raw: bytes
    score: float

    @property
    def fields(self) -> dict[str, Any]:
        return cast(dict[str, Any], json.loads(self.raw))


class NamespaceView:
    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    def key(self, suffix: str) -> str:
        return f"{self.namespace}:{suffix}"

    def queued(self, name: str) -> list[bytes]:
        """The queue of `name`, newest first (enqueue is LPUSH; fetch takes from the right)."""
        return cast(list[bytes], self.client.lrange(self.key(f"jobs:{name}"), 0, -1))

    def in_progress(self, name: str, pool_id: str) -> list[bytes]:
        return cast(list[bytes], self.client.lrange(self.key(f"jobs:{name}:{pool_id}:inprogress"), 0, -1))

    def lock(self, name: str) -> int:
        value = self.client.get(self.key(f"jobs:{name}:lock"))
        return int(value) if value is not None else 0

    def lock_info(self, name: str) -> dict[bytes, bytes]:
        return cast(dict[bytes, bytes], self.client.hgetall(self.key(f"jobs:{name}:lock_info")))

    def retry(self) -> list[Filed]:
        return self._sorted_set("retry")

    def scheduled(self) -> list[Filed]:
        return self._sorted_set("scheduled")

    def dead(self) -> list[Filed]:
        return self._sorted_set("dead")

    def _sorted_set(self, suffix: str) -> list[Filed]:
        members = cast(list[tuple[bytes, float]], self.client.zrange(self.key(suffix), 0, -1, withscores=True))
        return [Filed(raw, score) for raw, score in members]

    def idle_problems(self, name: str, *pool_ids: str) -> list[str]:
        """What is left of `name` in Redis that should not be once every job of it is finished."""
        problems = []
        if self.queued(name):
            problems.append(f"queue holds {self.queued(name)}")
        for pool_id in pool_ids:
            if self.in_progress(name, pool_id):
                problems.append(f"in-progress list of pool {pool_id} holds {self.in_progress(name, pool_id)}")
        if self.lock(name) != 0:
            problems.append(f"lock is {self.lock(name)}, not 0")
        if self.lock_info(name):
            problems.append(f"lock_info is {self.lock_info(name)}, not empty")
        return problems
