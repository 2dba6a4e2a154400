"""A mixed fleet on one test namespace: gocraft/work pools and enqueuers (gofleet) and workq ones, and the record
of runs both sides leave in `<ns>:interop:runs`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from interop.go_fleet import GoPool, go_enqueue
from support import wait_until
from workq import Enqueuer, Job, WorkerPool

WORKQ_POOL_OPTIONS: dict[str, Any] = {"concurrency": 4, "heartbeat_interval": 1.0, "dead_after": 12.0}
"""gocraft/work pools beat every 5 s: a workq reaper must wait longer than that before it takes one for dead."""


class Fleet:
    """Start pools of either kind (all stopped or killed by `close()`), enqueue from either side, read the runs."""

    def __init__(self, binaries: dict[str, Path], redis_url: str, namespace: str) -> None:
        self.binaries = binaries
        self.redis_url = redis_url
        self.namespace = namespace
        self.redis = redis.Redis.from_url(redis_url)
        self.enqueuer = Enqueuer(namespace, self.redis)
        self._go_pools: list[GoPool] = []
        self._workq_pools: list[WorkerPool] = []

    def go_pool(self, version: str, jobs: list[str], *, label: str, **options: Any) -> GoPool:
        """A gocraft/work pool of `version` (options: see `GoPool`)."""
        pool = GoPool(self.binaries[version], self.redis_url, self.namespace, jobs, label=label, **options)
        self._go_pools.append(pool)
        return pool

    def go_enqueue(self, version: str, name: str, args: dict[str, Any], **options: Any) -> list[str]:
        return go_enqueue(self.binaries[version], self.redis_url, self.namespace, name, args, **options)

    def go_job(self, version: str, name: str, args: dict[str, Any], **options: Any) -> Job:
        """Enqueue one job from Go; the job as gocraft/work wrote it."""
        [line] = self.go_enqueue(version, name, args, **options)
        return Job.from_json(line)

    def workq_pool(self, names: dict[str, dict[str, Any]], *, hold: Sequence[str] = (), **options: Any) -> WorkerPool:
        """A started workq pool running `names` (name → job options) with handlers that record their runs; those
        of `hold` then wait for `release()`, as gofleet's do."""
        pool = WorkerPool(self.namespace, self.redis_url, **{**WORKQ_POOL_OPTIONS, **options})
        for name, job_options in names.items():
            pool.job(name, self._record_and_hold if name in hold else self._record, **job_options)
        self._workq_pools.append(pool)
        pool.start()
        return pool

    def _record(self, job: Job) -> None:
        run = {"side": "workq", "name": job.name, "id": job.id, "args": job.args}
        self.redis.rpush(f"{self.namespace}:interop:runs", json.dumps(run))

    def _record_and_hold(self, job: Job) -> None:
        self._record(job)
        wait_until(lambda: self.redis.exists(self._release_key), 60, 0.05, "the test to release held jobs")

    @property
    def _release_key(self) -> str:
        return f"{self.namespace}:interop:release"

    def release(self) -> None:
        """Let held handlers of both sides finish."""
        self.redis.set(self._release_key, 1)

    def runs(self) -> list[dict[str, Any]]:
        """Every run recorded so far by either side, in order: {"side", "name", "id", "args"}."""
        return [json.loads(raw) for raw in self.redis.lrange(f"{self.namespace}:interop:runs", 0, -1)]

    def wait_for_runs(self, count: int, what: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        wait_until(lambda: len(self.runs()) >= count, timeout, 0.05, what)
        return self.runs()

    def close(self) -> None:
        self.release()
        for go_pool in self._go_pools:
            go_pool.kill()
        for workq_pool in self._workq_pools:
            workq_pool.stop()
        self.redis.close()
