"""Every Redis key of a namespace, named as gocraft/work names them (see docs/wire-format.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from workq import gojson

STATS_LIFETIME = 8 * 86400
"""Seconds a day's processed/failed counters (`Keys.stats`) are kept: a week of history for the dashboard."""


def key_prefix(namespace: str) -> str:
    """`ns` → `ns:`; an empty namespace or one already ending in `:` is used as is."""
    if namespace == "" or namespace.endswith(":"):
        return namespace
    return namespace + ":"


@dataclass(frozen=True)
class Keys:
    """Key builder for one namespace. A namespace in braces (`{app}`) puts every key in one cluster slot."""

    namespace: str

    @property
    def prefix(self) -> str:
        return key_prefix(self.namespace)

    def queue(self, job_name: str) -> str:
        return f"{self.prefix}jobs:{job_name}"

    @property
    def queue_prefix(self) -> str:
        """Prefix of every queue key; a queue key minus this prefix is its job name."""
        return f"{self.prefix}jobs:"

    def in_progress(self, job_name: str, pool_id: str) -> str:
        return f"{self.prefix}jobs:{job_name}:{pool_id}:inprogress"

    def paused(self, job_name: str) -> str:
        return f"{self.prefix}jobs:{job_name}:paused"

    def lock(self, job_name: str) -> str:
        return f"{self.prefix}jobs:{job_name}:lock"

    def lock_info(self, job_name: str) -> str:
        return f"{self.prefix}jobs:{job_name}:lock_info"

    def max_concurrency(self, job_name: str) -> str:
        return f"{self.prefix}jobs:{job_name}:max_concurrency"

    def waiting(self, job_name: str) -> str:
        """ext: exists while some pool is idle and waiting for jobs of this name (set with an expiry)."""
        return f"{self.prefix}jobs:{job_name}:waiting"

    @property
    def wake_channel(self) -> str:
        """ext: pub/sub channel on which enqueuers name a job name that idle pools are waiting for."""
        return f"{self.prefix}wake"

    def leases(self, job_name: str) -> str:
        """ext: sorted set of `<pool id>:<job bytes>` → deadline (epoch s) of running jobs with a time-out."""
        return f"{self.prefix}jobs:{job_name}:leases"

    def stats(self, job_name: str, at: float) -> str:
        """ext: hash of `processed` and `failed` counts of `job_name` on the UTC day of epoch `at`."""
        return f"{self.prefix}stats:{job_name}:{time.strftime('%Y-%m-%d', time.gmtime(at))}"

    def result(self, job_id: str) -> str:
        """ext: JSON `{"state", "job_name", "result", "fails", "last_err", "updated_at"}` of a finished job
        (`state` "done", kept `keep_result` seconds) or of one `Client.cancel` removed (`state` "cancelled")."""
        return f"{self.prefix}result:{job_id}"

    @property
    def cancel_channel(self) -> str:
        """ext: pub/sub channel on which `Client.cancel` names (as the message) the id of a running job to stop."""
        return f"{self.prefix}cancel"

    def cancel_request(self, job_id: str) -> str:
        """ext: exists (with an expiry) while a cancel of running job `job_id` is pending: the fallback that pools
        poll for the jobs they run, so a missed pub/sub message still stops the run."""
        return f"{self.prefix}cancel:{job_id}"

    def purged(self, job_name: str, token: str) -> str:
        """ext: the jobs one `Client.purge` took from a queue, while it releases their unique locks (then UNLINKed;
        expires on its own should the purging client die)."""
        return f"{self.prefix}purged:{job_name}:{token}"

    def minutes(self, job_name: str, at: float) -> str:
        """ext: hash of per-minute `processed:<MM>`, `failed:<MM>`, `latency:<MM>` of the UTC hour of `at`
        (see workq.throughput)."""
        return f"{self.prefix}minutes:{job_name}:{time.strftime('%Y-%m-%dT%H', time.gmtime(at))}"

    @property
    def totals(self) -> str:
        """ext: hash of all-time `processed:<job name>` and `failed:<job name>` counts (see workq.throughput)."""
        return f"{self.prefix}totals"

    @property
    def reaper_lock(self) -> str:
        """ext: held (SET NX PX) by the one pool whose reaper is running."""
        return f"{self.prefix}reaper_lock"

    @property
    def retry(self) -> str:
        return f"{self.prefix}retry"

    @property
    def scheduled(self) -> str:
        return f"{self.prefix}scheduled"

    @property
    def dead(self) -> str:
        return f"{self.prefix}dead"

    @property
    def known_jobs(self) -> str:
        return f"{self.prefix}known_jobs"

    @property
    def worker_pools(self) -> str:
        return f"{self.prefix}worker_pools"

    def worker_pool(self, pool_id: str) -> str:
        return f"{self.prefix}worker_pools:{pool_id}"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}worker:{worker_id}"

    def unique(self, job_name: str, key_json: str) -> str:
        return f"{self.prefix}unique:{job_name}:{key_json}"

    def unique_for(self, job_name: str, key_map: dict[str, Any] | None) -> str:
        """gocraft/work's unique key: the map as Go's json.Encoder writes it (with its trailing newline)."""
        return self.unique(job_name, "" if key_map is None else gojson.dumps(key_map) + "\n")

    @property
    def last_periodic_enqueue(self) -> str:
        return f"{self.prefix}last_periodic_enqueue"

    @property
    def periodic_high_water(self) -> str:
        """ext: hash of `<job name>:<spec>` → the last cron fire time added, so no tick is ever added twice."""
        return f"{self.prefix}periodic_enqueued_until"

    @property
    def periodic_last_run(self) -> str:
        """ext: hash of `<job name>:<spec>` → JSON `{"fire_at", "started_at"}` of the latest tick a worker started."""
        return f"{self.prefix}periodic_last_run"
