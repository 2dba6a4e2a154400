"""Drops the future ticks of cron schedules that no live pool registers any more, so a removed spec stops firing.

Pools add up to four minutes of ticks ahead (`periodic.LOOKAHEAD`); without this, a spec removed in a deploy
would keep firing for that long. A tick is dropped only when all of these hold:
- every pool in `worker_pools` publishes its schedules (a gocraft/work pool or an older workq does not say what it
  registers, so nothing is dropped while one is registered), and none publishes this one — a pool that crashed
  stays in `worker_pools` until it is reaped, so a crash-and-restart keeps its ticks;
- this pruner has seen the schedule unregistered for `UNREGISTERED_GRACE` seconds on end (a pool stopped for a
  restart or a deploy re-registers well within that);
- its fire time is still ahead (a due tick runs; one-off jobs are never touched: only exact tick bytes are removed).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import cast

from workq.clock import Clock, ClockLike, as_clock
from workq.connection import RedisClient, reply_text
from workq.errors import MalformedJob
from workq.job import Job
from workq.keys import Keys
from workq.periodic import LOOKAHEAD, schedule_field
from workq.schedules import PUBLISHED_FIELD, parse_tick, read_published
from workq.scripts import Scripts

logger = logging.getLogger("workq")

UNREGISTERED_GRACE = 60.0
"""Seconds a schedule must stay unregistered before its future ticks are dropped: the default `dead_after`, the
time workq already allows a silent pool before calling it dead. A restart shorter than this loses no tick."""

INTERVAL = 10.0
"""Seconds between passes: a removed spec fires for at most about `UNREGISTERED_GRACE + INTERVAL` seconds more."""


class TickPruner:
    """Run by every pool; passes are idempotent and each is one atomic script call (see drop_ticks.lua)."""

    def __init__(self, client: RedisClient, keys: Keys, scripts: Scripts, clock: ClockLike = None) -> None:
        self._client = client
        self._keys = keys
        self._scripts = scripts
        self._clock: Clock = as_clock(clock)
        self._unregistered_since: dict[str, float] = {}

    def prune(self) -> int:
        """One pass; returns how many ticks were dropped."""
        now = self._clock.server_now(self._client)
        pool_ids = sorted(reply_text(pool_id) for pool_id in self._client.smembers(self._keys.worker_pools))
        pipe = self._client.pipeline(transaction=False)
        for pool_id in pool_ids:
            pipe.hmget(self._keys.worker_pool(pool_id), [PUBLISHED_FIELD, "heartbeat_at"])
        pipe.hgetall(self._keys.periodic_high_water)
        *heartbeats, high_water = pipe.execute()
        registered: set[str] = set()
        for published, heartbeat_at in heartbeats:
            schedules = read_published(published)
            if schedules is None or heartbeat_at is None:  # says nothing of what it registers, or still starting
                self._unregistered_since.clear()
                return 0
            registered.update(schedule_field(job_name, spec) for job_name, spec, _ in schedules)
        due = self._unregistered_with_ticks_ahead(high_water, registered, now)
        if not due:
            return 0
        args: list[str | int | bytes] = [len(pool_ids), *pool_ids]
        for field, mark in due.items():
            args.extend(self._drop_args(field, mark, now))
        keys = [self._keys.scheduled, self._keys.periodic_high_water, self._keys.worker_pools]
        removed = int(self._scripts.drop_ticks(keys=keys, args=args))
        if removed > 0:
            logger.info("dropped %d future cron ticks of schedules no live pool registers any more", removed)
        return max(removed, 0)

    def _unregistered_with_ticks_ahead(
        self, high_water: Mapping[bytes, bytes], registered: set[str], now: float
    ) -> dict[str, bytes]:
        """Schedules with ticks ahead that have been unregistered for the grace period, with their marks."""
        due: dict[str, bytes] = {}
        still_unregistered: dict[str, float] = {}
        for raw_field, mark in high_water.items():
            field = reply_text(raw_field)
            if field in registered or not _is_after(mark, now):
                continue
            since = still_unregistered[field] = self._unregistered_since.get(field, now)
            if now - since >= UNREGISTERED_GRACE:
                due[field] = mark
        self._unregistered_since = still_unregistered
        return due

    def _drop_args(self, field: str, mark: bytes, now: float) -> list[str | int | bytes]:
        """The script's arguments for one schedule: its ticks still ahead, found by their ids in the scheduled set
        (whatever zone the spec was evaluated in), and the new mark: now, so that no fire time at or before now is
        ever added again while every later one can be."""
        until = min(float(mark), now + 2 * LOOKAHEAD)  # no pool adds ticks further ahead than LOOKAHEAD
        window = cast(list[bytes], self._client.zrangebyscore(self._keys.scheduled, f"({now}", until))
        ticks = [member for member in window if _tick_field(member) == field]
        return [field, mark, math.floor(now), len(ticks), *ticks]


def _tick_field(member: bytes) -> str | None:
    """The schedule a scheduled-set member is a tick of, or None for a one-off job."""
    try:
        job = Job.from_json(member)
    except MalformedJob:
        return None
    tick = parse_tick(job.id)
    return None if tick is None else tick.schedule_field


def _is_after(mark: bytes, now: float) -> bool:
    try:
        value = float(mark)
    except ValueError:
        return False
    return math.isfinite(value) and value > now
