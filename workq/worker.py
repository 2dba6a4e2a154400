"""One worker thread: fetch → middleware chain → ack, retry, reschedule or dead; never dies on a bad job."""

from __future__ import annotations

import logging
import random
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from workq import unique
from workq.clock import Clock
from workq.complaints import Complaints
from workq.connection import RedisClient, dedicated_client, is_redis_fault
from workq.errors import ArgsMismatch, Cancelled, JobTimeout, MalformedJob, Retry
from workq.failures import refile_failed, refiled
from workq.heartbeat import Observer
from workq.job import Job, malformed_job_record
from workq.kept_result import done_record
from workq.keys import STATS_LIFETIME, Keys
from workq.priority_sampler import PrioritySampler
from workq.registration import Registration
from workq.scripts import Scripts
from workq.time_limits import CANCELLED, RunControl, ThreadInterrupter, Watchdog, lease_seconds
from workq.wakeup import WakeSignal, Wakeup

logger = logging.getLogger("workq")
_T = TypeVar("_T")

IDLE_POLL = 1.0
"""Seconds an idle worker waits before looking again when no wake-up comes (jobs pushed by gocraft/work
enqueuers, or a wake-up lost to a dropped connection)."""

PROCESSED, FAILED = "processed", "failed"

ACK_GIVE_UP_WHEN_STOPPING = 10.0
"""While stopping, stop retrying an ack after this long; the job stays in progress for the reaper."""


class InFlight:
    """Counts workers between the start of a fetch and the end of its ack, so `drain()` cannot miss a job."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self._count += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._count -= 1

    @property
    def count(self) -> int:
        return self._count


@dataclass(frozen=True)
class WorkerContext:
    """What every worker thread of one pool shares."""

    client: RedisClient
    keys: Keys
    scripts: Scripts
    pool_id: str
    registrations: Mapping[str, Registration]
    sampler: PrioritySampler[Registration]
    clock: Clock
    rng: random.Random
    fetch_keys: Mapping[str, tuple[str, ...]]
    stopping: threading.Event
    wakeup: Wakeup
    wake_signal: WakeSignal
    in_flight: InFlight
    observer: Observer
    complaints: Complaints
    watchdog: Watchdog


Outcome = Literal["processed", "rescheduled", "retry", "dead", "discarded", "handed_back"]
"""Where a run left its job: done, back in the scheduled set (`Retry`), in the retry or dead set, dropped
(`skip_dead`), or back on its queue (the handler raised KeyboardInterrupt/SystemExit)."""


@dataclass(frozen=True)
class Finished:
    """How one run ended: the job as filed afterwards (fails and last_err counted), and what its chain raised."""

    job: Job
    outcome: Outcome
    error: BaseException | None = None


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


class Worker:
    """Runs jobs one at a time until the pool starts stopping; the job in hand is always finished first."""

    def __init__(self, worker_id: str, context: WorkerContext) -> None:
        self.worker_id = worker_id
        self._context = context
        self._current: Run | None = None
        self._fetching = False
        self._outage_since: float | None = None
        self._redis = dedicated_client(context.client)

    def run(self) -> None:
        try:
            self._loop()
        finally:
            if self._redis is not self._context.client:
                self._redis.close()

    def _loop(self) -> None:
        context = self._context
        woken = False
        while not context.stopping.is_set():
            try:
                with context.in_flight:
                    fetched = self._fetch()
                    if fetched is None:
                        # Mark the names as waited for, then look once more: an enqueue in between is either
                        # seen by this fetch or publishes a wake-up.
                        context.wake_signal.mark_waiting()
                        fetched = self._fetch()
                    self._note_redis_reachable()
                    if fetched is not None and context.stopping.is_set():
                        # The pool began stopping while this fetch was on its way: the job must not start now
                        # (the pool may be deregistering, and a reaper would then run it elsewhere too).
                        self._hand_back(fetched)
                    elif fetched is not None:
                        if woken:
                            context.wakeup.notify_one()  # woken for one job: there may be more
                        self._process(fetched)
            except Exception as exc:
                if is_redis_fault(exc):
                    self._note_redis_unreachable(exc)
                else:
                    logger.exception("worker %s: unexpected error; continuing", self.worker_id)
                fetched = None
            woken = fetched is None and context.wakeup.wait(IDLE_POLL)

    def _note_redis_unreachable(self, exc: Exception) -> None:
        """Log an outage once per worker, not once per retry."""
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            logger.warning("worker %s: Redis unavailable (%s); retrying every %.0f s", self.worker_id, exc, IDLE_POLL)
        else:
            logger.debug("worker %s: Redis still unavailable (%s)", self.worker_id, exc)

    def _note_redis_reachable(self) -> None:
        if self._outage_since is not None:
            logger.info(
                "worker %s: Redis reachable again after %.1f s",
                self.worker_id,
                time.monotonic() - self._outage_since,
            )
            self._outage_since = None

    @property
    def fetching(self) -> bool:
        """True while a fetch call is on its way to or from Redis."""
        return self._fetching

    def _fetch(self) -> Run | None:
        context = self._context
        order = context.sampler.sample()
        keys = [key for registration in order for key in context.fetch_keys[registration.name]]
        token = f"{context.rng.getrandbits(64):016x}"
        args: list[str | float] = [context.pool_id, context.clock.script_now(), token]
        args.extend(lease_seconds(registration.options.timeout) for registration in order)
        self._fetching = True
        try:
            result = context.scripts.fetch(keys=keys, args=args, client=self._redis)
        finally:
            self._fetching = False
        if not result:
            return None
        payload, group, leased = result
        if int(group) == 0:
            context.complaints.wrong_type(_as_bytes(leased).decode(errors="replace"), "its jobs are skipped")
            return None
        raw = _as_bytes(payload)
        lease = f"{context.pool_id}:{token}:".encode() + raw if _as_bytes(leased) else b""
        return Run(raw, order[int(group) - 1], lease, requeue_as=raw)

    def work_one(self) -> Finished | None:
        """Fetch one job and run it to its acknowledgement in the calling thread; None when none can be fetched.

        The steps of `_loop` without its waiting, for `workq.testing`'s drain.
        """
        fetched = self._fetch()
        return None if fetched is None else self._process(fetched)

    def _process(self, run: Run) -> Finished:
        self._current = run
        try:
            return self._run_job(run)
        finally:
            self._current = None
            self._context.observer.done(self.worker_id)

    def _run_job(self, run: Run) -> Finished:
        try:
            job = Job.from_json(run.payload)
        except MalformedJob as exc:
            return self._bury_malformed(run, exc)
        if job.unique:
            job = self._claim_unique(job, run)
        self._context.observer.started(self.worker_id, job)
        watchdog = self._context.watchdog
        control = watchdog.watch(
            job,
            run.registration.options.timeout,
            ThreadInterrupter(threading.get_ident()),
            lambda abandoned: self._settle_stopped(job, run, abandoned, None, client=self._context.client),
        )
        job._checkin_hook = lambda message: self._checkin(job, run, control, message)
        error = watchdog.run(control, lambda: run.registration.chain(job))
        if control.abandoned:
            logger.warning("job %s %s returned after it was abandoned: this late outcome is dropped", job.name, job.id)
            return Finished(job, "dead" if control.reason == CANCELLED else "retry", error)
        if control.reason is not None:
            return Finished(job, self._settle_stopped(job, run, control, error), error)
        if isinstance(error, Retry):
            self._ack(run, self._context.keys.scheduled, error.in_seconds, refiled(job))
            return Finished(job, "rescheduled")
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            logger.error(
                "job %s %s raised %s: returning it to its queue and stopping the pool",
                job.name,
                job.id,
                type(error).__name__,
            )
            self._hand_back(run)
            self._context.stopping.set()
            return Finished(job, "handed_back", error)
        if error is not None:
            return Finished(job, self._failed(job, run, _describe(error), error), error)
        return self._succeeded(job, run)

    def _succeeded(self, job: Job, run: Run) -> Finished:
        """Acknowledge, with the handler's return value stored in the same script call under `keep_result`."""
        keep = run.registration.options.keep_result
        if not keep:
            self._ack(run, counted=PROCESSED)
            return Finished(job, "processed")
        try:
            record = done_record(job, job._returned, self._context.clock.wall())
        except TypeError as exc:
            return Finished(job, self._failed(job, run, _describe(exc), exc), exc)
        kept = ("result", self._context.keys.result(job.id), record, max(1, round(keep * 1000)))
        self._ack(run, counted=PROCESSED, extra=kept)
        return Finished(job, "processed")

    def _settle_stopped(
        self,
        job: Job,
        run: Run,
        control: RunControl,
        outcome: BaseException | None,
        *,
        client: RedisClient | None = None,
    ) -> Outcome:
        """File a run that was interrupted: a cancel goes dead (no retry, its cancel request deleted), a time-out
        counts as a failure. `client`: the abandoning thread's own (the worker's may be in use)."""
        err = control.describe()
        if outcome is not None and not isinstance(outcome, (JobTimeout, Cancelled)):
            err += f"; the handler then raised {_describe(outcome)}"
        if control.reason != CANCELLED:
            return self._failed(job, run, err, outcome, client=client)
        job.last_err = err
        job.failed_at = int(self._context.clock.wall())
        logger.warning("job %s %s cancelled while running: moved to the dead queue", job.name, job.id)
        cancel = ("cancel", self._context.keys.cancel_request(job.id))
        self._ack(run, self._context.keys.dead, 0, refiled(job), extra=cancel, client=client)
        return "dead"

    def _checkin(self, job: Job, run: Run, control: RunControl, message: str) -> None:
        """Record progress; give the run its whole time limit again, and push its lease as far — only while this
        run still holds the lease. A run that was stopped, or whose lease another run took over, is told so."""
        control.raise_if_stopped()
        self._context.observer.checkin(self.worker_id, job, message)
        if not run.lease:
            return
        registration = run.registration
        extended = self._persist(
            lambda: self._context.scripts.extend_lease(
                keys=[registration.leases_key],
                args=[run.lease, lease_seconds(registration.options.timeout), self._context.clock.script_now()],
            ),
            f"extend the lease of job {job.id}",
        )
        if not extended:
            logger.error("job %s %s checked in after its lease expired: it was recovered elsewhere", job.name, job.id)
            raise JobTimeout(f"job {job.id}: its lease expired (this pool stalled); stop: it runs again elsewhere")
        self._context.watchdog.extend(control)

    @property
    def held_payload(self) -> bytes | None:
        """The bytes of the job this worker is running, as they sit in the in-progress list."""
        run = self._current
        return None if run is None else run.payload

    @property
    def held_lease(self) -> bytes:
        """The lease of the run this worker is in (b'' when none, or the job has no time-out)."""
        run = self._current
        return b"" if run is None else run.lease

    def abandon(self) -> bool:
        """Put the job this worker is running back on its queue (its handler outran the stop grace period).

        Safe against the handler finishing at the same moment: ack.lua files whichever comes first, once.
        """
        run = self._current
        if run is None:
            return False
        self._hand_back(run)
        self._context.observer.done(self.worker_id)
        return True

    def _hand_back(self, run: Run) -> None:
        """Back to the front of its queue, untouched (a unique job takes its lock again)."""
        self._ack(run, run.registration.queue_key, None, run.requeue_as, relock=run.relock)

    def _claim_unique(self, job: Job, run: Run) -> Job:
        """Release the job's unique lock as it starts, if the lock is its own (see workq.unique); for a by-key
        lock, run the newest args stored there. Returns the job to run."""
        context = self._context
        claim = self._persist(
            lambda: unique.claim(self._redis, context.scripts, context.keys, job), f"unlock job {job.id}"
        )
        if claim is None or not claim.released:
            return job
        if claim.by_key:
            run.requeue_as = claim.job.to_json()
        run.relock = (unique.lock_key_of(job, context.keys) or job.unique_key, run.requeue_as)
        return claim.job

    def _failed(
        self, job: Job, run: Run, err: str, exc: BaseException | None, *, client: RedisClient | None = None
    ) -> Outcome:
        context, options = self._context, run.registration.options
        retryable = not isinstance(exc, ArgsMismatch)  # retrying cannot fix a job's args
        refiling = refile_failed(
            job, options, context.keys, context.rng, err=err, now=context.clock.wall(), retryable=retryable
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
        self._ack(run, refiling.destination, refiling.delay, refiling.filed, counted=FAILED, client=client)
        return refiling.outcome

    def _bury_malformed(self, run: Run, exc: MalformedJob) -> Finished:
        now = int(self._context.clock.wall())
        reason = f"malformed job payload in queue {run.registration.name}: {exc}"
        logger.error("%s; moved to the dead queue: %r", reason, run.payload[:200])
        dead = malformed_job_record(run.registration.name, run.payload, reason, now)
        self._ack(run, self._context.keys.dead, 0, dead.to_json(), counted=FAILED)
        return Finished(dead, "dead", exc)

    def _ack(
        self,
        run: Run,
        destination: str | None = None,
        delay: float | None = None,
        filed: str | bytes = "",
        *,
        counted: str = "",
        relock: tuple[str, str | bytes] | None = None,
        extra: tuple[str, str] | tuple[str, str, str, int] | None = None,
        client: RedisClient | None = None,
    ) -> None:
        """Finish the run in one script call, retrying through Redis faults (the job stays in progress meanwhile).

        A sorted-set destination files the job `delay` seconds from now on Redis's clock; with no delay, the
        destination is the queue. `counted` names the daily stats field the outcome adds to (`processed`,
        `failed`, or "" for neither); `relock` (unique key, lock value) takes a unique job's lock again as it goes
        back to its queue. `extra` is ("result", result key, record JSON, lifetime ms) or ("cancel", cancel
        request key), see ack.lua.
        """
        context, registration = self._context, run.registration
        keys = registration.ack_keys(context.keys, context.clock.wall())
        args: list[str | bytes | float] = [
            context.pool_id,
            run.payload,
            "" if delay is None else delay,
            filed,
            counted,
            STATS_LIFETIME,
            run.lease,
            context.clock.script_now(),
        ]
        if destination is not None:
            keys.append(destination)
            if relock is not None:
                keys.append(relock[0])
        args.append(relock[1] if relock is not None else "")
        if extra is not None:
            keys.append(extra[1])
            args.extend((extra[0], *extra[2:]))
        target = self._redis if client is None else client
        self._persist(
            lambda: context.scripts.ack(keys=keys, args=args, client=target), f"finish a {registration.name} job"
        )

    def _persist(self, call: Callable[[], _T], what: str) -> _T | None:
        """Run a Redis call for a job in hand until it succeeds: the job is in its in-progress list meanwhile.

        While the pool stops, give up after `ACK_GIVE_UP_WHEN_STOPPING` s and leave the job for recovery.
        """
        wait, waited = 0.05, 0.0
        while True:
            try:
                result = call()
            except Exception as exc:
                if not is_redis_fault(exc):
                    raise
                if self._context.stopping.is_set() and waited >= ACK_GIVE_UP_WHEN_STOPPING:
                    logger.error("could not %s (%s); the job stays in progress for recovery", what, exc)
                    return None
                log = logger.debug if waited else logger.warning  # once per call, not once per try
                log("could not %s (%s); retrying until Redis answers", what, exc)
                time.sleep(wait)
                waited += wait
                wait = min(wait * 2, 2.0)
            else:
                if waited:
                    logger.info("%s: done after %.1f s of retries", what, waited)
                return result


def _as_bytes(payload: bytes | str) -> bytes:
    return payload if isinstance(payload, bytes) else payload.encode("utf-8")


def _describe(exc: BaseException) -> str:
    """The error text stored in `err`: the exception's one-line summary, as gocraft stores `err.Error()`."""
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()
