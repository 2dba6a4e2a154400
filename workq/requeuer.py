"""Requeuer: moves due retry and scheduled jobs back to their queues, with `t` reset to now (the original `t` kept
in `first_enqueued_at`)."""

from __future__ import annotations

import logging
from typing import cast

from workq.clock import Clock, ClockLike, as_clock
from workq.complaints import Complaints
from workq.connection import RedisClient, reply_text
from workq.errors import MalformedJob
from workq.job import Job, check_job_name, malformed_job_record
from workq.keys import Keys
from workq.scripts import Scripts

logger = logging.getLogger("workq")

BATCH = 100


class Requeuer:
    """Moves every due member of the retry and scheduled sets, whatever its job name (gocraft fix: never drops
    names this pool does not handle). Safe to run in every pool at once: each member moves exactly once."""

    def __init__(self, client: RedisClient, keys: Keys, scripts: Scripts, clock: ClockLike = None) -> None:
        self._client = client
        self._keys = keys
        self._scripts = scripts
        self._clock: Clock = as_clock(clock)
        self._complaints = Complaints()

    def requeue_due(self) -> int:
        """Move what is due now; returns how many jobs moved."""
        return sum(self._drain_set(zset) for zset in (self._keys.retry, self._keys.scheduled))

    def _drain_set(self, zset: str) -> int:
        moved, passed_over = 0, 0  # passed over: left in the set (a wrong-typed destination, or moved by another pool)
        while True:
            now = int(self._clock.server_now(self._client))
            members = cast(list[bytes], self._client.zrangebyscore(zset, "-inf", now, start=passed_over, num=BATCH))
            if not members:
                return moved
            keys: list[str] = [zset]
            args: list[str | bytes | int] = [now]
            for member in members:
                destination, filed, kind = self._destination(zset, member, now)
                keys.append(destination)
                args.extend((member, filed, kind))
            moved_now, broken = self._scripts.requeue(keys=keys, args=args)
            moved += int(moved_now)
            if broken:
                self._complaints.wrong_type(reply_text(broken), f"due jobs for it stay in {zset}")
            passed_over += len(members) - int(moved_now)
            if len(members) < BATCH:
                return moved

    def _destination(self, zset: str, member: bytes, now: int) -> tuple[str, str | bytes, str]:
        try:
            job = Job.from_json(member)
            check_job_name(job.name)
        except (MalformedJob, ValueError, TypeError) as exc:
            reason = f"malformed job in {zset}: {exc}"
            logger.error("%s; moved to the dead queue: %r", reason, member[:200])
            return self._keys.dead, malformed_job_record("unknown", member, reason, now).to_json(), "dead"
        job.reenqueued(now)
        return self._keys.queue(job.name), job.to_json(), "queue"
