"""Proof of life: the pool's heartbeat hash, and observations of what each worker thread is running."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping, Sequence
from typing import Any, cast

from workq import gojson
from workq.clock import Clock, ClockLike, as_clock
from workq.connection import RedisClient
from workq.job import Job
from workq.keys import Keys
from workq.periodic import CronSchedule
from workq.schedules import PUBLISHED_FIELD, last_run_value, parse_tick, published_value

OBSERVATION_LIFETIME = 86400

Observation = dict[str, str | int]


class _Observed:
    """What a worker runs, as noted on the job path: turned into its `Observation` (args encoded) only by a flush
    that finds it still running (most runs end before one)."""

    __slots__ = ("checkin", "checkin_at", "job", "started_at")

    def __init__(self, job: Job, started_at: int | None, checkin: str | None = None, checkin_at: int = 0) -> None:
        self.job = job
        self.started_at = started_at
        """Wall seconds of its start; None for a checkin whose start was written already."""
        self.checkin = checkin
        self.checkin_at = checkin_at

    def observation(self) -> Observation:
        job = self.job
        observation: Observation = {"job_name": job.name, "job_id": job.id}
        if self.started_at is not None:
            observation.update(
                started_at=self.started_at,
                args=_encoded_args(job),
                attempt=job.fails + 1,  # ext fields, like the one below: gocraft/work reads the ones it knows
                enqueued_at=job.first_enqueued_at,
            )
        if self.checkin is not None:
            observation.update(checkin=self.checkin, checkin_at=self.checkin_at)
        return observation


def _encoded_args(job: Job) -> str:
    """As gocraft/work: json.Marshal, no spaces. Encoded at the flush, so a handler that put something JSON cannot
    hold into its args meanwhile is shown without them rather than break every later flush."""
    try:
        return gojson.dumps(job.args) if job.args else ""
    except (TypeError, ValueError):
        return ""


def _merged(older: _Observed | None, newer: _Observed | None) -> _Observed | None:
    """A failed flush's entry under a newer one: a checkin after an unwritten start keeps that start."""
    if newer is None or older is None or newer.started_at is not None:
        return newer
    return _Observed(newer.job, older.started_at, newer.checkin, newer.checkin_at)


class OwnBeats:
    """When this pool's own heartbeats have reached Redis without a gap, on Redis's clock.

    Nobody can beat while Redis stalls (or while this process is paused), so right after such a gap every other
    pool's heartbeat looks old although the pools are alive. A reaper may only call a pool dead for silence it has
    itself watched: from the start of its own unbroken run of beats (see `Reaper`).
    """

    def __init__(self, heartbeat_interval: float, dead_after: float) -> None:
        # A gap this short cannot make a live pool look dead: its silence stays below one interval + the gap + one
        # interval < dead_after (which is at least 3 intervals). Longer gaps restart the watch.
        self._max_gap = max(2 * heartbeat_interval, dead_after / 3)
        self._lock = threading.Lock()
        self._last: float | None = None
        self._unbroken_since: float | None = None

    def record(self, now: float) -> None:
        with self._lock:
            if self._last is None or now - self._last > self._max_gap:
                self._unbroken_since = now
            self._last = now

    def unbroken_since(self, now: float) -> float | None:
        """Start of the current unbroken run of beats; None when the last beat is already too old (Redis or this
        process stalled just now, and the heartbeat thread has not caught up yet)."""
        with self._lock:
            if self._last is None or now - self._last > self._max_gap:
                return None
            return self._unbroken_since


class Heartbeater:
    """Registers the pool in `worker_pools` and refreshes its hash, so other pools know it is alive.

    `heartbeat_at` and `started_at` are Redis's clock (hosts' clocks may disagree), and the hash declares the
    pool's own `heartbeat_interval` and `dead_after` (ext fields), so that a reaper with shorter settings still
    waits long enough before it takes this pool for dead. Each beat also writes the pool's job names to
    `known_jobs` and, where missing, their `max_concurrency` caps: Redis may have restarted empty since, and the
    reaper and the caps depend on them. The first beat (the pool's start) overwrites the caps, later ones do not,
    so a pool started later (workq or gocraft/work) keeps the cap it set: the last pool started wins. The hash
    also publishes the pool's cron schedules (ext field `periodic_jobs`), so `workq schedules` can list them and
    the tick pruner knows which are live.
    """

    def __init__(
        self,
        client: RedisClient,
        keys: Keys,
        *,
        pool_id: str,
        max_concurrency: Mapping[str, int],
        concurrency: int,
        worker_ids: Sequence[str],
        heartbeat_interval: float,
        dead_after: float,
        schedules: Sequence[CronSchedule] = (),
        clock: ClockLike = None,
    ) -> None:
        self._client = client
        self._keys = keys
        self._pool_id = pool_id
        self._clock: Clock = as_clock(clock)
        self._max_concurrency = dict(max_concurrency)
        self._caps_written = False
        self.own_beats = OwnBeats(heartbeat_interval, dead_after)
        self._fields: dict[str, str | int | float] = {
            "job_names": ",".join(sorted(max_concurrency)),
            "concurrency": concurrency,
            "worker_ids": ",".join(sorted(worker_ids)),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "heartbeat_interval": heartbeat_interval,
            "dead_after": dead_after,
            PUBLISHED_FIELD: published_value(schedules),
        }

    def beat(self) -> None:
        exact_now = self._clock.server_now(self._client)
        now = int(exact_now)
        self._fields.setdefault("started_at", now)
        pipe = self._client.pipeline(transaction=False)
        pipe.sadd(self._keys.worker_pools, self._pool_id)
        pipe.hset(self._keys.worker_pool(self._pool_id), mapping=cast(Any, {**self._fields, "heartbeat_at": now}))
        pipe.sadd(self._keys.known_jobs, *self._max_concurrency)
        for name, cap in self._max_concurrency.items():
            # gocraft/work's rule: the last pool started sets the cap. Later beats only heal a lost one.
            pipe.set(self._keys.max_concurrency(name), cap, nx=self._caps_written)
        pipe.execute()
        self._caps_written = True
        self.own_beats.record(exact_now)

    def remove(self) -> None:
        pipe = self._client.pipeline(transaction=False)
        pipe.srem(self._keys.worker_pools, self._pool_id)
        pipe.delete(self._keys.worker_pool(self._pool_id))
        pipe.execute()


class Observer:
    """What each worker is doing, kept off the job path: workers note changes in memory and `flush()` (run by a
    background loop) writes the latest state of every worker that changed in one pipelined round trip."""

    def __init__(self, client: RedisClient, keys: Keys, clock: ClockLike = None) -> None:
        self._client = client
        self._keys = keys
        self._clock: Clock = as_clock(clock)
        self._lock = threading.Lock()
        self._pending: dict[str, _Observed | None] = {}
        self._written: set[str] = set()
        self._last_runs: dict[str, str] = {}
        """Schedule field → last-run JSON of cron ticks started since the last flush."""

    def started(self, worker_id: str, job: Job) -> None:
        """On the job path: a note only (the observation, args encoded, is built by the flush if it still runs)."""
        started_at = int(self._clock.wall())
        tick = parse_tick(job.id)
        with self._lock:
            self._pending[worker_id] = _Observed(job, started_at)
            if tick is not None:
                self._last_runs[tick.schedule_field] = last_run_value(tick.fire_at, started_at)

    def checkin(self, worker_id: str, job: Job, message: str) -> None:
        checkin_at = int(self._clock.wall())
        with self._lock:
            observed = self._pending.get(worker_id)
            if observed is None:
                self._pending[worker_id] = observed = _Observed(job, None)
            observed.checkin, observed.checkin_at = message, checkin_at

    def done(self, worker_id: str) -> None:
        with self._lock:
            self._pending[worker_id] = None

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            last_runs, self._last_runs = self._last_runs, {}
        if not pending and not last_runs:
            return
        pipe = self._client.pipeline(transaction=False)
        if last_runs:
            pipe.hset(self._keys.periodic_last_run, mapping=cast(Any, last_runs))
        for worker_id, observed in pending.items():
            key = self._keys.worker(worker_id)
            if observed is None:
                if worker_id in self._written:
                    pipe.delete(key)
            else:
                if observed.started_at is not None:  # a new job: no checkin of the previous one may linger
                    pipe.delete(key)
                pipe.hset(key, mapping=cast(Any, observed.observation()))
                pipe.expire(key, OBSERVATION_LIFETIME)
        try:
            pipe.execute()
        except BaseException:
            with self._lock:  # keep what could not be written, merged under whatever came in meanwhile
                self._last_runs = {**last_runs, **self._last_runs}
                for worker_id, older in pending.items():
                    self._pending[worker_id] = _merged(older, self._pending.get(worker_id, older))
            raise
        for worker_id, observed in pending.items():
            if observed is None:
                self._written.discard(worker_id)
            else:
                self._written.add(worker_id)
