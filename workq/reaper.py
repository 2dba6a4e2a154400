"""Recovery of dead pools' jobs: a pool silent for `dead_after` seconds gives its in-progress jobs back."""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable

import redis

from workq.connection import RedisClient
from workq.keys import Keys
from workq.scripts import Scripts

logger = logging.getLogger("workq")


class Reaper:
    """One pass finds dead pools and hands their jobs back to their queues, under a lock so that one reaper runs at
    a time across all pools. Every step is an atomic script, so a reaper that dies midway loses nothing: the next
    pass redoes what is left."""

    def __init__(
        self,
        client: RedisClient,
        keys: Keys,
        scripts: Scripts,
        *,
        pool_id: str,
        dead_after: float,
        lock_for: float,
        clock: Callable[[], float],
    ) -> None:
        self._client = client
        self._keys = keys
        self._scripts = scripts
        self._pool_id = pool_id
        self._dead_after = dead_after
        self._lock_ms = max(1, int(lock_for * 1000))
        self._clock = clock

    def reap(self) -> int:
        """Returns how many jobs went back to their queues."""
        token = f"{self._pool_id}:{secrets.token_hex(4)}"
        if not self._client.set(self._keys.reaper_lock, token, nx=True, px=self._lock_ms):
            if self._client.pttl(self._keys.reaper_lock) == -1:  # garbage without an expiry: let it lapse
                self._client.pexpire(self._keys.reaper_lock, self._lock_ms)
            return 0
        try:
            return self._reap_dead_pools()
        finally:
            self._scripts.release_lock(keys=[self._keys.reaper_lock], args=[token])

    def _reap_dead_pools(self) -> int:
        known = self._members(self._keys.known_jobs)
        pipe = self._client.pipeline(transaction=False)
        for name in sorted(known):
            pipe.hkeys(self._keys.lock_info(name))
        holders = dict(zip(sorted(known), pipe.execute(raise_on_error=False), strict=True))
        # Liveness is read after the holders: a pool beats before it fetches, so a holder seen above is live here.
        live, dead = self._pools_by_liveness()
        moved = 0
        for name in sorted(known | {name for names in dead.values() for name in names}):
            pool_ids = holders.get(name)
            holding = set() if not isinstance(pool_ids, list) else {_text(pool_id) for pool_id in pool_ids}
            # Pools holding jobs without a live heartbeat: dead ones, and ones that died before their first beat.
            for pool_id in sorted((holding - live) | set(dead)):
                moved += self._reap_jobs(name, pool_id)
        for pool_id in dead:
            self._forget_pool(pool_id)
        return moved

    def _pools_by_liveness(self) -> tuple[set[str], dict[str, list[str]]]:
        """Live pool ids, and dead ones with the job names their heartbeat listed."""
        pool_ids = sorted(self._members(self._keys.worker_pools))
        pipe = self._client.pipeline(transaction=False)
        for pool_id in pool_ids:
            pipe.hmget(self._keys.worker_pool(pool_id), ["heartbeat_at", "job_names"])
        replies = pipe.execute(raise_on_error=False)
        # heartbeat_at is whole seconds: a beat within the last second counts in full.
        oldest_alive = self._clock() - self._dead_after - 1
        live, dead = {self._pool_id}, dict[str, list[str]]()
        for pool_id, reply in zip(pool_ids, replies, strict=True):
            if pool_id == self._pool_id:
                continue
            beat, names = reply if isinstance(reply, list) else (None, None)
            if _seconds(beat) >= oldest_alive:
                live.add(pool_id)
            else:
                dead[pool_id] = [name for name in _text(names or b"").split(",") if name]
        return live, dead

    def _members(self, key: str) -> set[str]:
        try:
            return {_text(member) for member in self._client.smembers(key)}
        except redis.ResponseError as exc:
            logger.error("reaper: %s is not a set (%s); ignoring it", key, exc)
            return set()

    def _reap_jobs(self, name: str, pool_id: str) -> int:
        keys = self._keys
        moved = int(
            self._scripts.reap(
                keys=[
                    keys.queue(name),
                    keys.in_progress(name, pool_id),
                    keys.lock(name),
                    keys.lock_info(name),
                    keys.leases(name),
                ],
                args=[pool_id],
            )
        )
        if moved:
            logger.warning("reaper: pool %s is dead; %d %s job(s) back on their queue", pool_id, moved, name)
        return moved

    def _forget_pool(self, pool_id: str) -> None:
        try:
            worker_ids = self._client.hget(self._keys.worker_pool(pool_id), "worker_ids")
        except redis.ResponseError:
            worker_ids = None
        pipe = self._client.pipeline(transaction=False)
        pipe.srem(self._keys.worker_pools, pool_id)
        pipe.delete(self._keys.worker_pool(pool_id))
        for worker_id in _text(worker_ids or b"").split(","):
            if worker_id:
                pipe.delete(self._keys.worker(worker_id))
        pipe.execute()
        logger.warning("reaper: removed dead pool %s", pool_id)


def _seconds(value: bytes | str | None) -> float:
    """A heartbeat time; anything that is not a finite number counts as long ago."""
    try:
        seconds = float(value) if value is not None else -math.inf
    except ValueError:
        return -math.inf
    return seconds if math.isfinite(seconds) else -math.inf


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
