"""Client: inspection and repair of a namespace — queues, live pools and what their workers run, pausing."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis

from workq.connection import resolve_namespace, resolve_redis, translated_faults
from workq.errors import MalformedJob
from workq.job import Job, check_job_name
from workq.keys import Keys


@dataclass(frozen=True)
class Queue:
    job_name: str
    count: int
    latency: int
    """Seconds since the next job to run was enqueued (0 when empty)."""


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


class Client:
    """Read and repair one namespace. Safe to use while pools run: every change is a single atomic command or script."""

    def __init__(
        self,
        namespace: str | None = None,
        redis: Redis | str | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.namespace = resolve_namespace(namespace)
        self.redis = resolve_redis(redis)
        self.keys = Keys(self.namespace)
        self._clock = clock

    def pause(self, job_name: str) -> None:
        """Every pool stops fetching `job_name` (running jobs finish) until `unpause`."""
        with translated_faults(self.redis):
            self.redis.set(self.keys.paused(check_job_name(job_name)), "1")

    def unpause(self, job_name: str) -> None:
        with translated_faults(self.redis):
            self.redis.delete(self.keys.paused(check_job_name(job_name)))

    def is_paused(self, job_name: str) -> bool:
        with translated_faults(self.redis):
            return bool(self.redis.exists(self.keys.paused(check_job_name(job_name))))

    def queues(self) -> list[Queue]:
        """Every known job name with its queue length and latency, sorted by name."""
        with translated_faults(self.redis):
            names = sorted(_text(name) for name in self.redis.smembers(self.keys.known_jobs))
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                pipe.llen(self.keys.queue(name))
                pipe.lindex(self.keys.queue(name), -1)
            replies = pipe.execute()
        now = int(self._clock())
        queues = []
        for index, name in enumerate(names):
            count, oldest = replies[2 * index], replies[2 * index + 1]
            queues.append(Queue(name, int(count), _latency(oldest, now)))
        return queues

    def worker_pool_heartbeats(self) -> list[WorkerPoolHeartbeat]:
        with translated_faults(self.redis):
            pool_ids = sorted(_text(pool_id) for pool_id in self.redis.smembers(self.keys.worker_pools))
            pipe = self.redis.pipeline(transaction=False)
            for pool_id in pool_ids:
                pipe.hgetall(self.keys.worker_pool(pool_id))
            hashes = pipe.execute()
        return [
            WorkerPoolHeartbeat(
                worker_pool_id=pool_id,
                started_at=_int(fields.get(b"started_at")),
                heartbeat_at=_int(fields.get(b"heartbeat_at")),
                job_names=_list(fields.get(b"job_names")),
                concurrency=_int(fields.get(b"concurrency")),
                host=_text(fields.get(b"host", b"")),
                pid=_int(fields.get(b"pid")),
                worker_ids=_list(fields.get(b"worker_ids")),
            )
            for pool_id, fields in zip(pool_ids, hashes, strict=True)
            if fields
        ]

    def worker_observations(self) -> list[WorkerObservation]:
        """One observation per worker of every live pool; `is_busy` when it is running a job."""
        worker_ids = sorted({worker_id for pool in self.worker_pool_heartbeats() for worker_id in pool.worker_ids})
        with translated_faults(self.redis):
            pipe = self.redis.pipeline(transaction=False)
            for worker_id in worker_ids:
                pipe.hgetall(self.keys.worker(worker_id))
            hashes = pipe.execute()
        return [
            WorkerObservation(
                worker_id=worker_id,
                is_busy=bool(fields),
                job_name=_text(fields.get(b"job_name", b"")),
                job_id=_text(fields.get(b"job_id", b"")),
                started_at=_int(fields.get(b"started_at")),
                args_json=_text(fields.get(b"args", b"")),
                checkin=_text(fields.get(b"checkin", b"")),
                checkin_at=_int(fields.get(b"checkin_at")),
            )
            for worker_id, fields in zip(worker_ids, hashes, strict=True)
        ]


def _latency(oldest: bytes | None, now: int) -> int:
    if oldest is None:
        return 0
    try:
        return max(0, now - Job.from_json(oldest).enqueued_at)
    except MalformedJob:
        return 0


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def _int(value: bytes | str | None) -> int:
    try:
        return int(float(value)) if value is not None else 0
    except ValueError:
        return 0


def _list(value: bytes | str | None) -> list[str]:
    return [item for item in _text(value or b"").split(",") if item]
