"""One run of a fetched job, and the acknowledgement its outcome calls for (done, retry, rescheduled, dead, back).

Both executors (thread workers, the asyncio runner) hand the outcome of a run here, so a failure, a `Retry`, a
time-out or a cancel is filed the same way whichever kind of handler ran; the dispatcher sends the `Ack`.
"""

from __future__ import annotations

import logging
import math
import random
import traceback
from dataclasses import dataclass
from typing import Literal

from workq.backoff import default_backoff
from workq.clock import Clock
from workq.errors import ArgsMismatch, Cancelled, Retry
from workq.handler import JobOptions
from workq.job import Job
from workq.keys import Keys
from workq.log_format import job_context
from workq.registration import Registration

logger = logging.getLogger("workq")

MAX_BACKOFF = 10 * 365 * 86400
"""Longest delay a custom backoff may ask for (ten years); anything else falls back to the default curve."""

PROCESSED, FAILED = "processed", "failed"

STOPPING_OUTCOMES = (KeyboardInterrupt, SystemExit)
"""Outcomes that hand the job back and stop the pool instead of failing the job."""

Outcome = Literal["processed", "rescheduled", "retry", "dead", "discarded", "handed_back"]
"""Where a run left its job: done, back in the scheduled set (`Retry`), in the retry or dead set, dropped
(`skip_dead`), or back on its queue (the handler raised KeyboardInterrupt/SystemExit, or the pool stopped)."""


@dataclass
class Run:
    """One run of a fetched job: what finishing it, extending its lease or handing it back needs."""

    payload: bytes
    registration: Registration
    lease: bytes
    """This run's own lease, `<pool id>:<run token>:<payload>` (b'' when the job has no time-out)."""
    requeue_as: bytes | str = b""
    """What goes back on the queue if the run is handed back: the payload, or the by-key job it ran."""
    relock: tuple[str, str | bytes] | None = None
    """(unique key, lock value) to take again when handing back a unique job whose lock it released."""

    def hand_back(self) -> Ack:
        """Back to the front of its queue, untouched (a unique job takes its lock again)."""
        return Ack(self.registration.queue_key, None, self.requeue_as, relock=self.relock, outcome="handed_back")


@dataclass(frozen=True)
class Ack:
    """How a run ends, as one ack.lua call: remove the job from in progress, then file `filed` in `destination`
    (a sorted set, `delay` seconds from now; with no delay, the queue), add to the `counted` stats field and take
    `relock` (unique key, lock value) again. No destination: the job is simply done."""

    destination: str | None = None
    delay: float | None = None
    filed: str | bytes = ""
    counted: str = ""
    relock: tuple[str, str | bytes] | None = None
    outcome: Outcome = "processed"


@dataclass(frozen=True)
class Finished:
    """How one run ended: the job as filed afterwards (fails and last_err counted), and what its chain raised."""

    job: Job
    outcome: Outcome
    error: BaseException | None = None


class Outcomes:
    """Turns what a run ended with into its `Ack`: None (returned), `Retry`, `Cancelled`, or any other exception
    (a failure: retry with backoff, then dead or discarded after `max_fails`)."""

    def __init__(self, keys: Keys, clock: Clock, rng: random.Random) -> None:
        self._keys = keys
        self._clock = clock
        self._rng = rng

    def ack_for(self, run: Run, job: Job, outcome: BaseException | None) -> Ack:
        if outcome is None:
            return Ack(counted=PROCESSED)
        with job_context(job):  # the lines logged here, after the chain returned, still carry the job
            return self._ack_for_raised(run, job, outcome)

    def _ack_for_raised(self, run: Run, job: Job, outcome: BaseException) -> Ack:
        if isinstance(outcome, Retry):
            return Ack(self._keys.scheduled, outcome.in_seconds, _refiled(job), outcome="rescheduled")
        if isinstance(outcome, STOPPING_OUTCOMES):
            logger.error(
                "job %s %s raised %s: returning it to its queue and stopping the pool",
                job.name,
                job.id,
                type(outcome).__name__,
            )
            return run.hand_back()
        return self._failed(job, run.registration.options, outcome)

    def _failed(self, job: Job, options: JobOptions, exc: BaseException) -> Ack:
        job.fails += 1
        job.last_err = describe(exc)
        job.failed_at = int(self._clock.wall())
        attempt = f"job {job.name} {job.id} failed (fails={job.fails}, max_fails={options.max_fails})"
        if isinstance(exc, Cancelled):
            logger.warning("job %s %s cancelled while running: moved to the dead queue", job.name, job.id)
            return Ack(self._keys.dead, 0, _refiled(job), counted=FAILED, outcome="dead")
        retryable = not isinstance(exc, ArgsMismatch)  # retrying cannot fix a job's args
        ending = "out of retries" if retryable else "its args do not fit its task, not retried"
        if retryable and job.fails < options.max_fails:
            delay = self._backoff(job, options)
            logger.error("%s; retrying in %d s", attempt, delay, exc_info=exc)
            return Ack(self._keys.retry, delay, _refiled(job), counted=FAILED, outcome="retry")
        if options.skip_dead:
            logger.error("%s; %s, discarded (skip_dead)", attempt, ending, exc_info=exc)
            return Ack(counted=FAILED, outcome="discarded")
        logger.error("%s; %s, moved to the dead queue", attempt, ending, exc_info=exc)
        return Ack(self._keys.dead, 0, _refiled(job), counted=FAILED, outcome="dead")

    def _backoff(self, job: Job, options: JobOptions) -> int:
        if options.backoff is None:
            return default_backoff(job, self._rng)
        try:
            delay = options.backoff(job)
            if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= MAX_BACKOFF:
                raise TypeError(f"backoff returned {delay!r}, not seconds between 0 and {MAX_BACKOFF}")
            return math.ceil(delay)
        except Exception:
            logger.exception("backoff for job %s failed; using the default", job.name)
            return default_backoff(job, self._rng)


def _refiled(job: Job) -> str:
    """The JSON of a job filed again after its run started (retry, rescheduled, dead): its unique lock, if it had
    one, was released when the run started, so this copy holds none and must release none (gocraft/work workers
    read `unique` the same way)."""
    job.unique = False
    return job.to_json()


def describe(exc: BaseException) -> str:
    """The error text stored in `err`: the exception's one-line summary, as gocraft stores `err.Error()`."""
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()
