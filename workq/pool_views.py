"""Live worker pools as people see them: their heartbeats, and what each of their workers is running."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from workq.connection import reply_text, translated_faults
from workq.entry_checks import checked_time_field, whole_number
from workq.namespace_handle import NamespaceHandle

_Fields = Mapping[bytes, bytes]


@dataclass(frozen=True)
class WorkerPoolHeartbeat:
    worker_pool_id: str
    started_at: int
    heartbeat_at: int
    job_names: list[str]
    concurrency: int
    host: str
    pid: int
    worker_ids: list[str]
    problem: str = ""
    """Fields of the heartbeat hash that are not whole numbers (read as 0) or not times, or "" when all are."""


@dataclass(frozen=True)
class WorkerObservation:
    worker_id: str
    is_busy: bool
    job_name: str
    job_id: str
    started_at: int
    args_json: str
    checkin: str
    checkin_at: int
    problem: str = ""
    """Fields of the observation hash that are not times (read as 0), or "" when all are."""
    attempt: int = 0
    """Which run of the job this is (its failed runs + 1); 0 when the pool did not say (gocraft/work)."""
    enqueued_at: int = 0
    """When the job was first enqueued (before any retry reset its `t`); 0 when the pool did not say."""


class PoolViews(NamespaceHandle):
    """The `Client` methods that read the pools registered in `worker_pools` and their workers' observations."""

    def worker_pool_heartbeats(self) -> list[WorkerPoolHeartbeat]:
        with translated_faults(self.redis):
            pool_ids = sorted(reply_text(pool_id) for pool_id in self.redis.smembers(self.keys.worker_pools))
        hashes = self._hashes([self.keys.worker_pool(pool_id) for pool_id in pool_ids])
        return [_heartbeat(pool_id, fields) for pool_id, fields in zip(pool_ids, hashes, strict=True) if fields]

    def serving_pools(self) -> dict[str, int]:
        """How many live pools (those in `worker_pools`) serve each job name; a name absent here has none, so its
        jobs wait until a pool that registers it starts (or were enqueued under a mistyped name)."""
        serving: dict[str, int] = {}
        for pool in self.worker_pool_heartbeats():
            for name in set(pool.job_names):
                serving[name] = serving.get(name, 0) + 1
        return serving

    def worker_observations(self) -> list[WorkerObservation]:
        """One observation per worker of every live pool; `is_busy` when it is running a job."""
        worker_ids = sorted({worker_id for pool in self.worker_pool_heartbeats() for worker_id in pool.worker_ids})
        hashes = self._hashes([self.keys.worker(worker_id) for worker_id in worker_ids])
        return [_observation(worker_id, fields) for worker_id, fields in zip(worker_ids, hashes, strict=True)]

    def _hashes(self, keys: list[str]) -> list[_Fields]:
        """Every field of each hash at `keys`, in one round trip ({} for a hash that is not there)."""
        with translated_faults(self.redis):
            pipe = self.redis.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(key)
            return cast(list[_Fields], pipe.execute())


def _heartbeat(pool_id: str, fields: _Fields) -> WorkerPoolHeartbeat:
    problems: list[str] = []
    return WorkerPoolHeartbeat(
        worker_pool_id=pool_id,
        started_at=checked_time_field(fields.get(b"started_at"), "started_at", problems),
        heartbeat_at=checked_time_field(fields.get(b"heartbeat_at"), "heartbeat_at", problems),
        job_names=_names(fields.get(b"job_names")),
        concurrency=whole_number(fields.get(b"concurrency"), "concurrency", problems),
        host=reply_text(fields.get(b"host", b"")),
        pid=whole_number(fields.get(b"pid"), "pid", problems),
        worker_ids=_names(fields.get(b"worker_ids")),
        problem="; ".join(problems),
    )


def _observation(worker_id: str, fields: _Fields) -> WorkerObservation:
    problems: list[str] = []
    return WorkerObservation(
        worker_id=worker_id,
        is_busy=bool(fields),
        job_name=reply_text(fields.get(b"job_name", b"")),
        job_id=reply_text(fields.get(b"job_id", b"")),
        started_at=checked_time_field(fields.get(b"started_at"), "started_at", problems),
        args_json=reply_text(fields.get(b"args", b"")),
        checkin=reply_text(fields.get(b"checkin", b"")),
        checkin_at=checked_time_field(fields.get(b"checkin_at"), "checkin_at", problems),
        attempt=whole_number(fields.get(b"attempt"), "attempt", problems),
        enqueued_at=checked_time_field(fields.get(b"enqueued_at"), "enqueued_at", problems),
        problem="; ".join(problems),  # last: after every field above has noted its problem
    )


def _names(value: bytes | str | None) -> list[str]:
    """A comma-separated list field (job names, worker ids) as its items."""
    return [item for item in reply_text(value or b"").split(",") if item]
