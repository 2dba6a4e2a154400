"""Queues as people see them: lengths, latency, what they hold, and each job name's daily counts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

from workq.connection import reply_text, translated_faults
from workq.entry_checks import PAGE_SIZE, check_page, checked_time, marked, whole_number
from workq.job import Job, check_job_name
from workq.job_lookup import MALFORMED_PREFIX, decode_member
from workq.namespace_handle import NamespaceHandle


@dataclass(frozen=True)
class Queue:
    job_name: str
    count: int
    latency: int
    """Seconds since the next job to run was enqueued (0 when empty)."""
    paused: bool = False
    problem: str = ""
    """What is wrong with what Redis holds for this queue (its next job unreadable), or "" when nothing is."""


@dataclass(frozen=True)
class SetSizes:
    """How many jobs wait in each sorted set."""

    scheduled: int
    retry: int
    dead: int


@dataclass(frozen=True)
class JobStats:
    """Outcomes of one job name on one UTC day (`day` as YYYY-MM-DD), counted by the workers."""

    job_name: str
    day: str
    processed: int
    failed: int
    problem: str = ""
    """A counter that is not a whole number >= 0 reads as 0 and is named here."""


class QueueViews(NamespaceHandle):
    """The `Client` methods that read queues and counters (never changing them)."""

    def queued_jobs(self, job_name: str, page: int = 1) -> tuple[list[Job], int]:
        """A page of a queue's jobs, next to run first, and how many are queued."""
        check_page(page)
        queue = self.keys.queue(check_job_name(job_name))
        start = (page - 1) * PAGE_SIZE
        with translated_faults(self.redis):
            pipe = self.redis.pipeline(transaction=False)
            pipe.lrange(queue, -(start + PAGE_SIZE), -(start + 1))
            pipe.llen(queue)
            members, total = pipe.execute()
        return [marked(decode_member(member), member, []) for member in reversed(members)], int(total)

    def peek(self, job_name: str, count: int = 10) -> list[Job]:
        """The next `count` jobs of a queue, next to run first, without taking them (beanstalkd's peek)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be an int >= 1, got {count!r}")
        with translated_faults(self.redis):
            members = cast(list[bytes], self.redis.lrange(self.keys.queue(check_job_name(job_name)), -count, -1))
        return [decode_member(member) for member in reversed(members)]

    def job_stats(self, day: float | None = None) -> list[JobStats]:
        """Processed and failed counts of every known job name on the UTC day of epoch `day` (default today)."""
        at = self._clock() if day is None else day
        with translated_faults(self.redis):
            names = self._known_job_names()
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                pipe.hmget(self.keys.stats(name, at), ["processed", "failed"])
            counts = pipe.execute()
        label = time.strftime("%Y-%m-%d", time.gmtime(at))
        stats = []
        for name, (processed, failed) in zip(names, counts, strict=True):
            problems: list[str] = []
            counted = whole_number(processed, "processed", problems), whole_number(failed, "failed", problems)
            stats.append(JobStats(name, label, *counted, problem="; ".join(problems)))
        return stats

    def queues(self) -> list[Queue]:
        """Every known job name with its queue length and latency, sorted by name."""
        with translated_faults(self.redis):
            names = self._known_job_names()
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                pipe.llen(self.keys.queue(name))
                pipe.lindex(self.keys.queue(name), -1)
                pipe.exists(self.keys.paused(name))
            replies = pipe.execute()
        now = int(self._clock())
        queues = []
        for index, name in enumerate(names):
            count, oldest, paused = replies[3 * index : 3 * index + 3]
            latency, problem = _latency(oldest, now)
            queues.append(Queue(name, int(count), latency, bool(paused), problem))
        return queues

    def set_sizes(self) -> SetSizes:
        """The sizes of the scheduled, retry and dead sets, in one round trip."""
        with translated_faults(self.redis):
            pipe = self.redis.pipeline(transaction=False)
            for zset in (self.keys.scheduled, self.keys.retry, self.keys.dead):
                pipe.zcard(zset)
            scheduled, retry, dead = pipe.execute()
        return SetSizes(int(scheduled), int(retry), int(dead))

    def _known_job_names(self) -> list[str]:
        """Every name in `known_jobs` (each enqueued or registered by a pool at some time), sorted."""
        return sorted(reply_text(name) for name in self.redis.smembers(self.keys.known_jobs))


def _latency(oldest: bytes | None, now: int) -> tuple[int, str]:
    """Seconds the next job has waited, and what is wrong with it when it cannot say (0 then)."""
    if oldest is None:
        return 0, ""
    job = decode_member(oldest)
    if job.id.startswith(MALFORMED_PREFIX):
        return 0, f"the next job is not valid: {job.last_err}"
    problems: list[str] = []
    enqueued_at = checked_time(job.enqueued_at, "the next job's t", problems)
    return (max(0, now - enqueued_at) if enqueued_at else 0), "; ".join(problems)
