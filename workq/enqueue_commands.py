"""What each enqueue writes, without the I/O: the jobs (checked before Redis is touched), the commands that store
them in one write, and what the replies and faults mean. `Enqueuer` and `workq.aio.AsyncEnqueuer` both build on it,
so they store the same bytes with the same commands and fail alike."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from workq import instrumentation, unique
from workq.clock import Clock
from workq.connection import REDIS_FAULTS, AnyRedisClient, translated_faults
from workq.errors import MaybeEnqueued
from workq.job import Job, ScheduledJob, check_args, check_job_name
from workq.keys import Keys
from workq.scripts import ScriptText
from workq.send_rounds import Command, ReplyLost, ScriptCall

logger = logging.getLogger("workq")

ENQUEUE_MANY_CHUNK = 1000

WAKE_FAULTS: tuple[type[Exception], ...] = (ReplyLost, *REDIS_FAULTS)
"""What a wake-up may meet without failing the enqueue that sent it."""

KNOWN_JOBS_REFRESH = 300.0
"""Seconds between re-adding a name to `known_jobs`, which is otherwise added once per name per Enqueuer."""

MAX_DELAY = 100 * 365 * 86400
"""Longest delay `enqueue_in` accepts: beyond it a due time is surely a mistake (10**17 s, say), and times past
year 9999 break every tool that shows them."""

UNIQUE_LOCK_LIFETIME = 86400
"""Seconds a unique lock outlives its job's due time, in case the job is lost before a worker starts it."""

_ENQUEUE_UNIQUE = ScriptText.named("enqueue_unique")
_SCHEDULE = ScriptText.named("schedule")
_WAKE = ScriptText.named("wake")


@dataclass(frozen=True)
class Push:
    """The commands of one push, for one write. `wakes`: the last one wakes idle pools (its error reply does not
    fail the push: the jobs are queued)."""

    commands: list[Command]
    wakes: bool


class EnqueueCommands:
    """The commands of one enqueuer (namespace, clock, which names it has added to `known_jobs`, which names' queues
    its last push found empty). Thread-safe."""

    def __init__(self, keys: Keys, clock: Clock) -> None:
        self.keys = keys
        self.clock = clock
        self._known_until: dict[str, float] = {}
        self._known_lock = threading.Lock()
        self._emptied: set[str] = set()
        """Names whose last push made their queue non-empty: pools are likely idle on them."""

    def new_job(self, name: str, args: dict[str, Any] | None) -> Job:
        check_job_name(name)
        return Job(name=name, enqueued_at=int(self.clock.wall()), args=check_args(args), args_null=args is None)

    def new_unique_job(
        self, name: str, args: dict[str, Any] | None, key_map: dict[str, Any] | None, seconds: float | None
    ) -> Job:
        """A job locked by `key_map` (its args, or a by-key enqueue's key), due `seconds` from now if given; every
        input is checked before Redis is touched."""
        job = self.new_job(name, args)
        if key_map is not None:
            check_args(key_map)
        if seconds is not None:
            check_delay(seconds)
        job.unique = True
        job.unique_key = self.keys.unique_for(name, key_map)
        return job

    def push(self, name: str, jobs: Sequence[Job]) -> Push:
        """LPUSH in chunks of 1000 (and SADD to known_jobs on a name's first use), for one write. When the last push
        of `name` made its queue non-empty, the wake-up goes in the same write: the pools that drained the queue are
        likely idle, and a second round trip would delay their start."""
        queue, jobs_json = self.keys.queue(name), [job.to_json() for job in jobs]
        commands: list[Command] = [
            ("LPUSH", queue, *jobs_json[start : start + ENQUEUE_MANY_CHUNK])
            for start in range(0, len(jobs_json), ENQUEUE_MANY_CHUNK)
        ]
        if self._first_use(name):
            commands.append(("SADD", self.keys.known_jobs, name))
        wakes = name in self._emptied
        if wakes:
            commands.append(self.wake(name))
        return Push(commands, wakes)

    def pushed_needs_wake(self, name: str, jobs: Sequence[Job], push: Push, replies: Sequence[Any]) -> bool:
        """True when idle pools are still to be woken: the push made the queue non-empty and carried no wake-up. A
        queue that already held jobs needs none: whoever made it non-empty sent one, and a pool that marked itself
        waiting after that looks at the queue once more before it sleeps. So a steady producer pays one plain LPUSH
        per job, and one that keeps finding the queue empty one round trip (the wake-up rides along)."""
        emptied = int(replies[0]) == min(len(jobs), ENQUEUE_MANY_CHUNK)
        if emptied:
            self._emptied.add(name)
        else:
            self._emptied.discard(name)
        if push.wakes:
            if isinstance(replies[-1], Exception):
                self.wake_failed(name, replies[-1])
            return False
        return emptied

    def schedule(self, job: Job, seconds: float) -> list[Command]:
        """The one script call that files `job` in the scheduled set `seconds` from now on Redis's clock (or the
        injected one); its reply is the due time. Build it inside `sending` (it serialises the job)."""
        return [
            ScriptCall(
                _SCHEDULE,
                [self.keys.scheduled, self.keys.known_jobs],
                [job.to_json(), job.name, seconds, self.clock.script_now()],
            )
        ]

    def enqueue_unique(self, job: Job, *, by_key: bool, seconds: float | None) -> ScriptCall:
        """The one script call that takes the lock and files the job (due `seconds` from now on Redis's clock, if
        given), or, by key and locked, replaces the args the pending job will run with. Its reply: 0 when an
        identical job is pending, else 1 (queued) or the due time (scheduled)."""
        job_json = job.to_json()
        lifetime = UNIQUE_LOCK_LIFETIME + (0 if seconds is None else math.ceil(max(seconds, 0)))
        destination = self.keys.queue(job.name) if seconds is None else self.keys.scheduled
        return ScriptCall(
            _ENQUEUE_UNIQUE,
            [destination, job.unique_key, self.keys.known_jobs, self.keys.waiting(job.name)],
            [
                job_json,
                lifetime,
                "" if seconds is None else seconds,
                unique.lock_value(job),
                job.name,
                self.keys.wake_channel,
                self.clock.script_now(),
                *([unique.by_key_value_body(job_json)] if by_key else []),
            ],
        )

    @staticmethod
    def unique_enqueued(job: Job, reply: Any, seconds: float | None) -> Job | None:
        """What an `enqueue_unique` call's `reply` means: None when an identical job was pending, else `job` (as a
        `ScheduledJob` due at the reply's time when it was delayed)."""
        if not reply:
            return None
        return job if seconds is None else job.as_view(ScheduledJob, run_at=int(reply))

    def wake(self, name: str) -> ScriptCall:
        """Wake pools idle on `name` (see `workq.wakeup`)."""
        return ScriptCall(_WAKE, [self.keys.waiting(name)], [self.keys.wake_channel, name])

    @staticmethod
    def wake_failed(name: str, exc: Exception) -> None:
        """The jobs are queued already: a failed wake-up only leaves the pools to find them at their next poll."""
        logger.warning("enqueued %s but could not wake idle worker pools (%s); they poll each second", name, exc)

    def _first_use(self, name: str) -> bool:
        """True when `name` must be (re)added to known_jobs: on first use and every few minutes after."""
        now = self.clock.wall()
        with self._known_lock:
            if self._known_until.get(name, 0.0) > now:
                return False
            self._known_until[name] = now + KNOWN_JOBS_REFRESH
            return True

    @contextmanager
    def sending(self, client: AnyRedisClient, jobs: Sequence[Job]) -> Iterator[None]:
        """Around the one write of an enqueue, and the serialising of its jobs (an installed enqueue hook, see
        `workq.instrumentation`, may add fields to them first): Redis faults become `ConnectionFailed` (nothing was
        enqueued), a lost reply `MaybeEnqueued`; after any failure, names are re-added to known_jobs on their next
        use."""
        with instrumentation.enqueuing(jobs):
            try:
                with translated_faults(client):
                    yield
            except ReplyLost as lost:
                self._forget_known()
                raise _maybe_enqueued(jobs, lost) from lost.cause
            except BaseException:
                self._forget_known()
                raise

    def _forget_known(self) -> None:
        with self._known_lock:
            self._known_until.clear()


def check_delay(seconds: float) -> None:
    """`enqueue_in`'s delay: a finite number of seconds, at most `MAX_DELAY`; refused before Redis is touched."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise TypeError(f"seconds must be a finite number, got {seconds!r}")
    if seconds > MAX_DELAY:
        raise ValueError(f"seconds must be at most {MAX_DELAY} (100 years), got {seconds!r}")


def _maybe_enqueued(jobs: Sequence[Job], lost: ReplyLost) -> MaybeEnqueued:
    names = sorted({job.name for job in jobs})
    what = f"job {jobs[0].name} {jobs[0].id}" if len(jobs) == 1 else f"{len(jobs)} jobs of {', '.join(names)}"
    return MaybeEnqueued(
        f"{what} may have been enqueued: Redis at {lost.server} got the command but its reply was lost "
        f"({lost.cause}); it is not sent again, so check for the job id before enqueuing it again",
        jobs,
    )
