"""One worker thread: fetch → middleware chain → ack, retry, reschedule or dead; never dies on a bad job."""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from workq.backoff import default_backoff
from workq.connection import RedisClient, dedicated_client, is_redis_fault
from workq.errors import MalformedJob, Retry
from workq.handler import JobOptions
from workq.heartbeat import Observer
from workq.job import Job, malformed_job_record
from workq.keys import Keys
from workq.priority_sampler import PrioritySampler
from workq.registration import Registration
from workq.scripts import Scripts
from workq.wakeup import WakeSignal, Wakeup

logger = logging.getLogger("workq")
_T = TypeVar("_T")

IDLE_POLL = 1.0
"""Seconds an idle worker waits before looking again when no wake-up comes (jobs pushed by gocraft/work
enqueuers, or a wake-up lost to a dropped connection)."""

MAX_BACKOFF = 10 * 365 * 86400
"""Longest delay a custom backoff may ask for (ten years); anything else falls back to the default curve."""

PROCESSED, FAILED = "processed", "failed"
STATS_LIFETIME = 8 * 86400
"""Seconds a day's processed/failed counters are kept: a week of history for the dashboard."""

ACK_GIVE_UP_WHEN_STOPPING = 10.0
"""While stopping, stop retrying an ack after this long; the job stays in progress for the reaper."""


class Complaints:
    """Wrong-typed keys the fetch script skipped, logged once a minute per key per pool, not once per fetch."""

    def __init__(self, every: float = 60.0) -> None:
        self._every = every
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def report(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -self._every) < self._every:
                return
            self._last[key] = now
        logger.error("%s holds the wrong type of value (WRONGTYPE); its jobs are skipped until it is repaired", key)


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
    clock: Callable[[], float]
    rng: random.Random
    fetch_keys: Mapping[str, tuple[str, ...]]
    stopping: threading.Event
    wakeup: Wakeup
    wake_signal: WakeSignal
    in_flight: InFlight
    observer: Observer
    complaints: Complaints


@dataclass
class Run:
    """One run of a fetched job: what finishing it, extending its lease or handing it back needs."""

    payload: bytes
    registration: Registration
    lease: str
    """The lease deadline this run holds, as fetch/extend wrote it ('' when the job has no time-out)."""
    requeue_as: bytes | str = b""
    """What goes back on the queue if the run is handed back: the payload, or the by-key job it ran."""
    relock: tuple[str, str] | None = None
    """(unique key, lock value) to take again when handing back a unique job."""


class Worker:
    """Runs jobs one at a time until the pool starts stopping; the job in hand is always finished first."""

    def __init__(self, worker_id: str, context: WorkerContext) -> None:
        self.worker_id = worker_id
        self._context = context
        self._current: Run | None = None
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
                    if fetched is not None:
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

    def _fetch(self) -> Run | None:
        context = self._context
        order = context.sampler.sample()
        keys = [key for registration in order for key in context.fetch_keys[registration.name]]
        args: list[str | float] = [context.pool_id, context.clock()]
        args.extend(registration.options.timeout for registration in order)
        result = context.scripts.fetch(keys=keys, args=args, client=self._redis)
        if not result:
            return None
        payload, group, lease = result
        if int(group) == 0:
            context.complaints.report(_as_bytes(lease).decode(errors="replace"))
            return None
        raw = _as_bytes(payload)
        return Run(raw, order[int(group) - 1], _as_bytes(lease).decode(), requeue_as=raw)

    def _process(self, run: Run) -> None:
        self._current = run
        try:
            self._run_job(run)
        finally:
            self._current = None
            self._context.observer.done(self.worker_id)

    def _run_job(self, run: Run) -> None:
        try:
            job = Job.from_json(run.payload)
        except MalformedJob as exc:
            self._bury_malformed(run, exc)
            return
        if job.unique:
            job, by_key = self._claim_unique(job)
            if by_key is not None:
                run.requeue_as = job.to_json()
                run.relock = (job.unique_key, run.requeue_as if by_key else "1")
        self._context.observer.started(self.worker_id, job)
        job._checkin_hook = lambda message: self._checkin(job, run, message)
        try:
            run.registration.chain(job)
        except Retry as retry:
            run_at = math.ceil(self._context.clock() + retry.in_seconds)
            self._ack(run, self._context.keys.scheduled, run_at, job.to_json())
        except (KeyboardInterrupt, SystemExit) as exc:
            logger.error(
                "job %s %s raised %s: returning it to its queue and stopping the pool",
                job.name,
                job.id,
                type(exc).__name__,
            )
            self._hand_back(run)
            self._context.stopping.set()
        except BaseException as exc:
            self._failed(job, run, exc)
        else:
            self._ack(run, counted=PROCESSED)

    def _checkin(self, job: Job, run: Run, message: str) -> None:
        """Record progress; for a job with a time-out, also push its deadline `timeout` seconds ahead — only
        while this run still holds the lease (after a time-out, a newer run owns it)."""
        self._context.observer.checkin(self.worker_id, job, message)
        if not run.lease:
            return
        registration = run.registration
        member = registration.lease_member(self._context.pool_id, run.payload)
        deadline = repr(self._context.clock() + registration.options.timeout)
        extended = self._persist(
            lambda: self._context.scripts.extend_lease(
                keys=[registration.leases_key], args=[member, run.lease, deadline]
            ),
            f"extend the lease of job {job.id}",
        )
        if extended:
            run.lease = deadline
        else:
            logger.warning("job %s %s checked in after its timeout: another run of it has started", job.name, job.id)

    @property
    def held_payload(self) -> bytes | None:
        """The bytes of the job this worker is running, as they sit in the in-progress list."""
        run = self._current
        return None if run is None else run.payload

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

    def _claim_unique(self, job: Job) -> tuple[Job, bool | None]:
        """Release the job's unique lock as it starts; for unique-by-key, run the newest args stored there.

        Returns the job to run and whether its lock is by key (None when it has no lock of this namespace).
        """
        prefix = self._context.keys.unique(job.name, "")
        if not job.unique_key.startswith(prefix):
            logger.warning("job %s %s: ignoring unique_key %r outside %r", job.name, job.id, job.unique_key, prefix)
            return job, None
        stored = self._persist(lambda: self._redis.getdel(job.unique_key), f"unlock job {job.id}")
        if not stored or stored in (b"1", "1"):
            return job, False
        try:
            return Job.from_json(stored), True
        except MalformedJob as exc:
            logger.warning(
                "job %s %s: unique lock holds no valid job (%s); running the queued one", job.name, job.id, exc
            )
            return job, False

    def _failed(self, job: Job, run: Run, exc: BaseException) -> None:
        context, options = self._context, run.registration.options
        now = int(context.clock())
        job.fails += 1
        job.last_err = _describe(exc)
        job.failed_at = now
        attempt = f"job {job.name} {job.id} failed (fails={job.fails}, max_fails={options.max_fails})"
        if job.fails < options.max_fails:
            delay = self._backoff(job, options)
            logger.error("%s; retrying in %d s", attempt, delay, exc_info=exc)
            self._ack(run, context.keys.retry, now + delay, job.to_json(), counted=FAILED)
        elif options.skip_dead:
            logger.error("%s; out of retries, discarded (skip_dead)", attempt, exc_info=exc)
            self._ack(run, counted=FAILED)
        else:
            logger.error("%s; out of retries, moved to the dead queue", attempt, exc_info=exc)
            self._ack(run, context.keys.dead, now, job.to_json(), counted=FAILED)

    def _backoff(self, job: Job, options: JobOptions) -> int:
        if options.backoff is None:
            return default_backoff(job, self._context.rng)
        try:
            delay = options.backoff(job)
            if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= MAX_BACKOFF:
                raise TypeError(f"backoff returned {delay!r}, not seconds between 0 and {MAX_BACKOFF}")
            return math.ceil(delay)
        except Exception:
            logger.exception("backoff for job %s failed; using the default", job.name)
            return default_backoff(job, self._context.rng)

    def _bury_malformed(self, run: Run, exc: MalformedJob) -> None:
        now = int(self._context.clock())
        reason = f"malformed job payload in queue {run.registration.name}: {exc}"
        logger.error("%s; moved to the dead queue: %r", reason, run.payload[:200])
        dead = malformed_job_record(run.registration.name, run.payload, reason, now)
        self._ack(run, self._context.keys.dead, now, dead.to_json(), counted=FAILED)

    def _ack(
        self,
        run: Run,
        destination: str | None = None,
        score: int | None = None,
        filed: str | bytes = "",
        *,
        counted: str = "",
        relock: tuple[str, str] | None = None,
    ) -> None:
        """Finish the run in one script call, retrying through Redis faults (the job stays in progress meanwhile).

        `counted` names the daily stats field the outcome adds to (`processed`, `failed`, or "" for neither);
        `relock` (unique key, lock value) takes a unique job's lock again as it goes back to its queue.
        """
        context, registration = self._context, run.registration
        keys = registration.ack_keys(context.keys, context.clock())
        args: list[str | bytes | int] = [
            context.pool_id,
            run.payload,
            "" if score is None else score,
            filed,
            counted,
            STATS_LIFETIME,
            run.lease,
        ]
        if destination is not None:
            keys.append(destination)
            if relock is not None:
                keys.append(relock[0])
                args.append(relock[1])
        self._persist(
            lambda: context.scripts.ack(keys=keys, args=args, client=self._redis), f"finish a {registration.name} job"
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
