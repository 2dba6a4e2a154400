"""Recovery of dead pools' jobs: a pool silent for `dead_after` seconds gives its in-progress jobs back."""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import redis

from workq.clock import Clock, ClockLike, as_clock
from workq.complaints import Complaints
from workq.connection import RedisClient, reply_text
from workq.heartbeat import OwnBeats
from workq.job import check_job_name
from workq.keys import Keys
from workq.scripts import Scripts

logger = logging.getLogger("workq")


class Reaper:
    """One pass finds dead pools and hands their jobs back to their queues, under a lock so that one reaper runs at
    a time across all pools. Every step is an atomic script, so a reaper that dies midway loses nothing: the next
    pass redoes what is left.

    A pool is dead when its heartbeat (Redis's clock) is older than the longer of this pool's `dead_after` and the
    one it declared itself, so pools with different settings never take each other for dead too early; and only for
    silence this pool watched itself (`own_beats`): right after a Redis stall or a pause of this process every
    heartbeat looks old, so the clock of silence starts no earlier than this pool's own unbroken run of beats.
    `own_beats=None` (a one-off reaper outside a pool, such as an admin tool) judges by heartbeats alone.
    """

    def __init__(
        self,
        client: RedisClient,
        keys: Keys,
        scripts: Scripts,
        *,
        pool_id: str,
        dead_after: float,
        lock_for: float,
        clock: ClockLike = None,
        own_beats: OwnBeats | None = None,
    ) -> None:
        self._client = client
        self._own_beats = own_beats
        self._keys = keys
        self._scripts = scripts
        self._pool_id = pool_id
        self._dead_after = dead_after
        self._lock_ms = max(1, int(lock_for * 1000))
        self._clock: Clock = as_clock(clock)
        self._complaints = Complaints()

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
        names = sorted(self._members(self._keys.known_jobs, "a job name", check_job_name))
        pipe = self._client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self._keys.lock_info(name))
        holders = {
            name: self._held_counts(name, reply)
            for name, reply in zip(names, pipe.execute(raise_on_error=False), strict=True)
        }
        # Liveness is read after the holders: a pool beats before it fetches, so a holder seen above is live here.
        now = self._clock.server_now(self._client)
        watched_since = self._watched_since(now)
        if watched_since is None:
            logger.debug("reaper: this pool's own heartbeat is behind (Redis or this process stalled): no verdicts")
            return 0
        live, dead = self._pools_by_liveness(now, watched_since)
        # A holder without a heartbeat (died before its first beat, or its hash is gone) is silent since ever.
        silent_holders_dead = not _beat_is_recent(-math.inf, now, watched_since, self._dead_after)
        moved = 0
        for name in sorted(set(names) | {name for pool in dead.values() for name in pool.job_names}):
            held = holders.get(name, {})
            for pool_id in sorted((set(held) - live) | set(dead)):
                pool = dead.get(pool_id)
                if pool is None and not silent_holders_dead:
                    continue
                # A gocraft/work pool that stopped cleanly leaves by-key placeholders in its in-progress list that
                # its own counters no longer count: those jobs ran. Only what a pool held by its counters (or any
                # workq pool's list, which its counters always match) goes back to the queue.
                requeue = held.get(pool_id, 1) > 0 or (pool is not None and pool.is_workq)
                moved += self._reap_jobs(name, pool_id, requeue=requeue)
        for pool_id in dead:
            self._forget_pool(pool_id)
        return moved

    def _held_counts(self, name: str, reply: object) -> dict[str, int]:
        """Pool id → jobs of `name` it holds, by its lock_info counters; garbage counts as holding."""
        if not isinstance(reply, dict):
            return {}
        counts: dict[str, int] = {}
        for raw_id, raw_count in reply.items():
            pool_id = self._valid(raw_id, self._keys.lock_info(name), "a pool id", _check_pool_id)
            if pool_id is not None:
                counts[pool_id] = _count(raw_count)
        return counts

    def _watched_since(self, now: float) -> float | None:
        """Since when this reaper has watched Redis answer (-inf: judge by heartbeats alone); None: not now."""
        if self._own_beats is None:
            return -math.inf
        return self._own_beats.unbroken_since(now)

    def _pools_by_liveness(self, now: float, watched_since: float) -> tuple[set[str], dict[str, DeadPool]]:
        """Live pool ids, and the dead ones."""
        pool_ids = sorted(self._members(self._keys.worker_pools, "a pool id", _check_pool_id))
        pipe = self._client.pipeline(transaction=False)
        for pool_id in pool_ids:
            pipe.hmget(self._keys.worker_pool(pool_id), ["heartbeat_at", "job_names", "dead_after"])
        replies = pipe.execute(raise_on_error=False)
        live, dead = {self._pool_id}, dict[str, DeadPool]()
        for pool_id, reply in zip(pool_ids, replies, strict=True):
            if pool_id == self._pool_id:
                continue
            beat, names, declared = reply if isinstance(reply, list) else (None, None, None)
            dead_after = max(self._dead_after, _seconds(declared, missing=0.0))
            if _beat_is_recent(_seconds(beat, missing=-math.inf), now, watched_since, dead_after):
                live.add(pool_id)
            else:
                job_names = [
                    name
                    for name in reply_text(names or b"").split(",")
                    if name and self._valid(name, self._keys.worker_pool(pool_id), "a job name", check_job_name)
                ]
                dead[pool_id] = DeadPool(job_names, is_workq=declared is not None)
        return live, dead

    def _members(self, key: str, what: str, check: Callable[[str], object]) -> set[str]:
        try:
            members = self._client.smembers(key)
        except redis.ResponseError as exc:
            self._complaints.wrong_type(key, f"the reaper ignores it ({exc})")
            return set()
        return {member for raw in members if (member := self._valid(raw, key, what, check)) is not None}

    def _valid(self, raw: bytes | str, key: str, what: str, check: Callable[[str], object]) -> str | None:
        """`raw` as text if it passes `check`; garbage (not UTF-8, not a valid name) is skipped and logged."""
        try:
            text = raw.decode() if isinstance(raw, bytes) else raw
            check(text)
        except (UnicodeDecodeError, ValueError, TypeError) as exc:
            self._complaints.report(f"{key}:{raw!r}", "reaper: skipping %r in %s: not %s (%s)", raw, key, what, exc)
            return None
        return text

    def _reap_jobs(self, name: str, pool_id: str, *, requeue: bool) -> int:
        keys = self._keys
        moved, broken = self._scripts.reap(
            keys=[
                keys.queue(name),
                keys.in_progress(name, pool_id),
                keys.lock(name),
                keys.lock_info(name),
                keys.leases(name),
            ],
            args=[pool_id, "1" if requeue else "0"],
        )
        if broken:
            self._complaints.wrong_type(reply_text(broken), f"pool {pool_id}'s {name} jobs stay in progress")
        moved = int(moved)
        if moved and requeue:
            logger.warning("reaper: pool %s is dead; %d %s job(s) back on their queue", pool_id, moved, name)
        elif moved:
            logger.warning(
                "reaper: pool %s stopped; dropped %d %s job(s) its counters did not hold (leftover by-key "
                "placeholders of gocraft/work, whose jobs ran)",
                pool_id,
                moved,
                name,
            )
        return moved if requeue else 0

    def _forget_pool(self, pool_id: str) -> None:
        try:
            worker_ids = self._client.hget(self._keys.worker_pool(pool_id), "worker_ids")
        except redis.ResponseError:
            worker_ids = None
        pipe = self._client.pipeline(transaction=False)
        pipe.srem(self._keys.worker_pools, pool_id)
        pipe.delete(self._keys.worker_pool(pool_id))
        for worker_id in reply_text(worker_ids or b"").split(","):
            if worker_id:
                pipe.delete(self._keys.worker(worker_id))
        pipe.execute()
        logger.warning("reaper: removed dead pool %s", pool_id)


@dataclass(frozen=True)
class DeadPool:
    job_names: list[str]
    is_workq: bool
    """Its heartbeat declared workq's liveness settings: its in-progress lists hold only jobs it ran."""


def _beat_is_recent(beat: float, now: float, watched_since: float, dead_after: float) -> bool:
    """Silence counts from the later of the pool's last beat and the start of the reaper's own watch.
    heartbeat_at is whole seconds: a beat within the last second counts in full."""
    return max(beat, watched_since) >= now - dead_after - 1


def _check_pool_id(pool_id: str) -> None:
    """Pool ids become key parts (`…:<pool id>:inprogress`): no separators, spaces or control characters."""
    if not pool_id or any(char == ":" or char.isspace() or not char.isprintable() for char in pool_id):
        raise ValueError("a pool id is printable text without ':' or spaces")


def _seconds(value: bytes | str | None, *, missing: float) -> float:
    """A time or duration field; anything that is not a finite number counts as `missing`."""
    try:
        seconds = float(value) if value is not None else missing
    except ValueError:
        return missing
    return seconds if math.isfinite(seconds) else missing


def _count(value: bytes | str) -> int:
    """A lock_info counter; garbage counts as one held job, so the pool's list is requeued rather than dropped."""
    try:
        return int(value)
    except ValueError:
        return 1
