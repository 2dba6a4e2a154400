"""One run of a fetched job, and the acknowledgement its outcome calls for (done, retry, rescheduled, dead, back).

Both executors (thread workers, the asyncio runner) hand the outcome of a run here, so a failure, a `Retry`, a
time-out or a cancel is filed the same way whichever kind of handler ran; the dispatcher sends the `Ack`.
"""

from __future__ import annotations

import logging
import random
import traceback
from dataclasses import dataclass
from typing import Literal

from workq.clock import Clock
from workq.errors import ArgsMismatch, Cancelled, JobTimeout, Retry
from workq.failures import refile_failed, refiled
from workq.handler import JobOptions
from workq.job import Job
from workq.job_control import CANCELLED_KEPT
from workq.kept_result import cancelled_record, done_record
from workq.keys import STATS_LIFETIME, Keys
from workq.log_format import job_context
from workq.registration import Registration

logger = logging.getLogger("workq")

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
    extra: tuple[str, tuple[str, ...], str, int] | None = None
    """("result" or "cancel", its keys, the result record's JSON, its lifetime in ms): see ack.lua."""


class AckCall:
    """KEYS and ARGV of one ack.lua call, which files every run added (see ack.lua for their layout)."""

    def __init__(self, pool_id: str, now: float | str) -> None:
        self.keys: list[str] = []
        self.args: list[str | bytes | float] = [pool_id, now, STATS_LIFETIME]
        self.runs = 0

    def add(self, run_keys: list[str], payload: bytes, ack: Ack, lease: bytes) -> None:
        """File `payload` as `ack` says; `run_keys`: the five keys of `Registration.ack_keys`."""
        keys = list(run_keys)
        if ack.destination is not None:
            keys.append(ack.destination)
            if ack.relock is not None:
                keys.append(ack.relock[0])
        extra_kind, record, lifetime_ms = "", "", 0
        if ack.extra is not None:
            extra_kind, extra_keys, record, lifetime_ms = ack.extra
            keys.extend(extra_keys)
        self.keys.extend(keys)
        self.args.extend(
            (
                len(keys),
                payload,
                "" if ack.delay is None else ack.delay,
                ack.filed,
                ack.counted,
                lease,
                ack.relock[1] if ack.relock is not None else "",
                extra_kind,
                record,
                lifetime_ms,
            )
        )
        self.runs += 1


_PROCESSED = Ack(counted=PROCESSED)
"""The ack of nearly every run (one record, shared: an `Ack` is frozen)."""


@dataclass(frozen=True)
class Finished:
    """How one run ended: the job as filed afterwards (fails and last_err counted), and what its chain raised."""

    job: Job
    outcome: Outcome
    error: BaseException | None = None


class Outcomes:
    """Turns what a run ended with into its `Ack`: None (returned; its value kept under `keep_result`), `Retry`,
    `Cancelled` (dead, not retried), `JobTimeout` or any other exception (a failure: retry with backoff, then dead
    or discarded after `max_fails`)."""

    def __init__(self, keys: Keys, clock: Clock, rng: random.Random) -> None:
        self._keys = keys
        self._clock = clock
        self._rng = rng

    def ack_for(self, run: Run, job: Job, outcome: BaseException | None) -> Ack:
        if outcome is None:
            return self._succeeded(run, job)
        with job_context(job):  # the lines logged here, after the chain returned, still carry the job
            return self._ack_for_raised(run, job, outcome)

    def _ack_for_raised(self, run: Run, job: Job, outcome: BaseException) -> Ack:
        if isinstance(outcome, Retry):
            return Ack(self._keys.scheduled, outcome.in_seconds, refiled(job), outcome="rescheduled")
        if isinstance(outcome, STOPPING_OUTCOMES):
            logger.error(
                "job %s %s raised %s: returning it to its queue and stopping the pool",
                job.name,
                job.id,
                type(outcome).__name__,
            )
            return run.hand_back()
        if isinstance(outcome, Cancelled):
            return self._cancelled(job, outcome)
        err = str(outcome) if isinstance(outcome, JobTimeout) and str(outcome) else describe(outcome)
        return self._failed(job, run.registration.options, outcome, err)

    def _succeeded(self, run: Run, job: Job) -> Ack:
        """Done; with `keep_result`, the return value is stored by the same ack (one that JSON cannot hold fails
        the run instead)."""
        keep = run.registration.options.keep_result
        if not keep:
            return _PROCESSED
        try:
            record = done_record(job, job._returned, self._clock.wall())
        except TypeError as exc:
            with job_context(job):
                return self._failed(job, run.registration.options, exc, describe(exc))
        return Ack(
            counted=PROCESSED, extra=("result", (self._keys.result(job.id),), record, max(1, round(keep * 1000)))
        )

    def _cancelled(self, job: Job, outcome: Cancelled) -> Ack:
        """Dead at once, `err` starting with "cancelled" (not a failure: `fails` unchanged); the same ack deletes
        the cancel request and records the job as "cancelled" for a day, as `Client.cancel` does for a waiting one."""
        message = str(outcome) or "cancelled"
        job.last_err = message if message.startswith("cancelled") else f"cancelled: {message}"
        job.failed_at = int(self._clock.wall())
        logger.warning("job %s %s cancelled while running: moved to the dead queue", job.name, job.id)
        keys = (self._keys.cancel_request(job.id), self._keys.result(job.id))
        record = ("cancel", keys, cancelled_record(job, self._clock.wall()), CANCELLED_KEPT * 1000)
        return Ack(self._keys.dead, 0, refiled(job), outcome="dead", extra=record)

    def _failed(self, job: Job, options: JobOptions, exc: BaseException, err: str) -> Ack:
        retryable = not isinstance(exc, ArgsMismatch)  # retrying cannot fix a job's args
        refiling = refile_failed(
            job, options, self._keys, self._rng, err=err, now=self._clock.wall(), retryable=retryable
        )
        logger.error(
            "job %s %s failed (fails=%d, max_fails=%d): %s; %s",
            job.name,
            job.id,
            job.fails,
            options.max_fails,
            err,
            refiling.verdict,
            exc_info=exc,
        )
        if refiling.destination is None:
            return Ack(counted=FAILED, outcome=refiling.outcome)
        return Ack(refiling.destination, refiling.delay, refiling.filed, counted=FAILED, outcome=refiling.outcome)


def describe(exc: BaseException) -> str:
    """The error text stored in `err`: the exception's one-line summary, as gocraft stores `err.Error()`."""
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()
