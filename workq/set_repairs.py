"""Deleting and retrying entries of the scheduled, retry and dead sets. An entry is named by its job id and its
score, either as the views show it (`run_at`, `retry_at`, `died_at`: whole seconds) or exact (see `_score_ranges`)."""

from __future__ import annotations

import math
from typing import cast

from workq import unique
from workq.connection import translated_faults
from workq.entry_checks import shown_score
from workq.errors import NotDeleted, NotRetried
from workq.job import Job, check_job_name
from workq.job_lookup import MALFORMED_PREFIX, decode_member
from workq.namespace_handle import NamespaceHandle
from workq.scripts import Scripts

BATCH = 100
"""Dead entries read per round trip while choosing which to retry."""


class SetRepairs(NamespaceHandle):
    """The `Client` methods that remove entries from the sorted sets, or put dead ones back on their queues."""

    def delete_scheduled_job(self, scheduled_for: float, job_id: str) -> None:
        """Delete one scheduled job (and release its unique lock if the lock is still its own: see
        `workq.unique`); `NotDeleted` if it is not there."""
        job = self._remove(self.keys.scheduled, scheduled_for, job_id)
        if job.unique:
            with translated_faults(self.redis):
                unique.claim(self.redis, Scripts.register(self.redis), self.keys, job)

    def delete_retry_job(self, retry_at: float, job_id: str) -> None:
        self._remove(self.keys.retry, retry_at, job_id)

    def delete_dead_job(self, died_at: float, job_id: str) -> None:
        self._remove(self.keys.dead, died_at, job_id)

    def delete_all_dead_jobs(self) -> int:
        """Empty the dead queue; returns how many jobs were deleted."""
        with translated_faults(self.redis):
            pipe = self.redis.pipeline(transaction=True)
            pipe.zcard(self.keys.dead)
            pipe.delete(self.keys.dead)
            count, _ = pipe.execute()
        return int(count)

    def retry_dead_job(self, died_at: float, job_id: str) -> None:
        """Put one dead job back on its queue with its failures cleared; `NotRetried` if it is not there."""
        member, job = self._find(self.keys.dead, died_at, job_id, NotRetried)
        if job.id.startswith(MALFORMED_PREFIX):
            raise NotRetried(f"dead job {job_id} is not a valid job and cannot run; delete it instead")
        try:
            check_job_name(job.name)
        except ValueError as exc:
            raise NotRetried(f"dead job {job_id} cannot go back to a queue: {exc}; delete it instead") from None
        if not self._move_dead([(member, job)]):
            raise NotRetried(f"dead job {job_id} (died at {died_at}) was taken meanwhile, or its queue is not a list")

    def retry_all_dead_jobs(self) -> int:
        return self.retry_dead_jobs()

    def retry_dead_jobs(
        self, job_name: str | None = None, limit: int | None = None, *, reason: str | None = None
    ) -> int:
        """Requeue up to `limit` dead jobs (oldest deaths first), of `job_name` only when given (beanstalkd's
        kick), and only those whose `err` contains `reason` when given (e.g. "unknown job": what gocraft/work's
        requeuer dead-letters). Returns how many were requeued; members that are not valid jobs stay dead."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be an int >= 0 or None, got {limit!r}")
        if reason is not None and (not isinstance(reason, str) or not reason):
            raise ValueError(f"reason must be a non-empty string or None, got {reason!r}")
        moved, start = 0, 0
        while limit is None or moved < limit:
            with translated_faults(self.redis):
                members = cast(list[bytes], self.redis.zrange(self.keys.dead, start, start + BATCH - 1))
            if not members:
                break
            chosen = [(member, job) for member in members if _wanted(job := decode_member(member), job_name, reason)]
            if limit is not None:
                chosen = chosen[: limit - moved]
            moved_now = self._move_dead(chosen) if chosen else 0
            moved += moved_now
            start += len(members) - moved_now
        return moved

    def _move_dead(self, chosen: list[tuple[bytes, Job]]) -> int:
        """Requeue dead jobs whose names can name a queue (a payload's name becomes a key only once checked);
        a queue of the wrong type leaves its jobs dead. Returns how many moved."""
        now = int(self._clock())
        keys: list[str] = [self.keys.dead]
        args: list[bytes | str | int] = [now]
        for member, job in chosen:
            if not _names_a_queue(job):
                continue
            job.reenqueued(now)
            job.fails, job.last_err, job.failed_at = 0, "", 0
            keys.append(self.keys.queue(job.name))
            args.extend((member, job.to_json(), "queue"))
        if len(keys) == 1:
            return 0
        with translated_faults(self.redis):
            moved, _ = Scripts.register(self.redis).requeue(keys=keys, args=args)
        return int(moved)

    def _find(
        self, zset: str, score: float, job_id: str, missing: type[NotDeleted] | type[NotRetried]
    ) -> tuple[bytes, Job]:
        if isinstance(score, bool) or not isinstance(score, (int, float)) or math.isnan(score):
            raise TypeError(f"a score is a number (the job's run_at, retry_at or died_at), got {score!r}")
        with translated_faults(self.redis):
            pipe = self.redis.pipeline(transaction=False)
            for low, high in _score_ranges(score):
                pipe.zrangebyscore(zset, low, high, withscores=True)
            replies = cast(list[list[tuple[bytes, float]]], pipe.execute())
        for member, member_score in (entry for reply in replies for entry in reply):
            job = decode_member(member)
            if job.id == job_id and score in (member_score, shown_score(member_score)):
                return member, job
        raise missing(f"no job {job_id} at {score} in {zset}")

    def _remove(self, zset: str, score: float, job_id: str) -> Job:
        member, job = self._find(zset, score, job_id, NotDeleted)
        with translated_faults(self.redis):
            if not self.redis.zrem(zset, member):
                raise NotDeleted(f"job {job_id} at {score} in {zset} was taken meanwhile")
        return job


def _score_ranges(score: float) -> list[tuple[str, str]]:
    """ZRANGEBYSCORE bounds covering every entry `_find` matches for `score`: its exact score, or one a view shows
    as `score` — within a second of it (a fraction dropped; exact where a double has no fractions) or, for 0,
    ±inf. The caller picks from these by score and id."""
    if math.isinf(score):
        infinity = "+inf" if score > 0 else "-inf"
        return [(infinity, infinity)]
    if abs(score) >= 2**52:
        return [(str(score), str(score))]
    around = (f"({score - 1}", f"({score + 1}")
    return [around, ("-inf", "-inf"), ("+inf", "+inf")] if score == 0 else [around]


def _wanted(job: Job, job_name: str | None, reason: str | None = None) -> bool:
    return (
        not job.id.startswith(MALFORMED_PREFIX)
        and (job_name is None or job.name == job_name)
        and (reason is None or reason in job.last_err)
    )


def _names_a_queue(job: Job) -> bool:
    try:
        check_job_name(job.name)
    except ValueError:
        return False
    return True
