"""Fetching jobs and acknowledging their runs: the Redis side of running jobs, shared by both executors.

A thread worker owns one `Dispatcher` (its own connection); the asyncio runner owns one to fetch and one to
acknowledge. Executors never touch Redis for a job otherwise: they take a `Run` from `fetch_next`, hand the job to
a handler, and give the outcome to `finish`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from workq import unique
from workq.connection import dedicated_client, is_redis_fault
from workq.errors import MalformedJob
from workq.job import Job, malformed_job_record
from workq.keys import STATS_LIFETIME
from workq.pool_context import FetchOrder, WorkerContext
from workq.priority_sampler import PrioritySampler
from workq.registration import Registration
from workq.run import FAILED, STOPPING_OUTCOMES, Ack, Finished, Run
from workq.scripts import ScriptCall, call_many
from workq.time_limits import lease_seconds

logger = logging.getLogger("workq")
_T = TypeVar("_T")

IDLE_POLL = 1.0
"""Seconds an idle worker waits before looking again when no wake-up comes (jobs pushed by gocraft/work
enqueuers, or a wake-up lost to a dropped connection)."""

ACK_GIVE_UP_WHEN_STOPPING = 10.0
"""While stopping, stop retrying an ack after this long; the job stays in progress for the reaper."""


class Dispatcher:
    """Fetches and acknowledges jobs over one connection of its own; used by one thread at a time."""

    def __init__(self, name: str, context: WorkerContext) -> None:
        self.name = name
        self._context = context
        self._redis = dedicated_client(context.client)
        self._fetching = False
        self._outage_since: float | None = None

    def close(self) -> None:
        if self._redis is not self._context.client:
            self._redis.close()

    @property
    def fetching(self) -> bool:
        """True while a fetch call is on its way to or from Redis."""
        return self._fetching

    # --- fetching ------------------------------------------------------------------------------------------

    def exchange(self, acks: Sequence[tuple[Run, Ack]], order: FetchOrder, count: int, woken: bool) -> list[Run]:
        """Finish runs and fetch up to `count` new ones in one round trip, acks first (so the slots and
        max_concurrency counts they free are free for the fetches). The acks are sent until Redis answers; the
        fetches are not sent again after a fault (a fetch whose reply was lost leaves its job in this pool's
        in-progress list, where the orphan sweeper finds it). Call it with the jobs it may fetch counted in
        `in_flight`; `woken`: this fetch follows a wake-up (then the next waiter is woken too)."""
        context = self._context
        if count == 0:
            self.acknowledge_many(acks)
            return []
        if not acks and count == 1:
            runs = [] if (run := self._fetch(order.sampler)) is None else [run]
        else:
            try:
                runs = self._send(acks, order.sampler, count)
            except Exception as exc:
                if acks and is_redis_fault(exc):
                    self.acknowledge_many(acks)
                raise
        if not runs:
            # Mark the names as waited for, then look once more: an enqueue in between is either seen by this
            # fetch or publishes a wake-up.
            context.wake_signal.mark_waiting()
            runs = [] if (run := self._fetch(order.sampler)) is None else [run]
        self._note_redis_reachable()
        if runs and context.stopping.is_set():
            # The pool began stopping while this fetch was on its way: the jobs must not start now (the pool may
            # be deregistering, and a reaper would then run them elsewhere too).
            self.acknowledge_many([(run, run.hand_back()) for run in runs])
            return []
        if runs and woken:
            order.wakeup.notify_one()  # woken for one job: there may be more
        return runs

    def _send(self, acks: Sequence[tuple[Run, Ack]], sampler: PrioritySampler[Registration], count: int) -> list[Run]:
        scripts = self._context.scripts
        fetches = [self._fetch_call(sampler) for _ in range(count)]
        calls: list[ScriptCall] = [(scripts.ack, *self._ack_call(run, ack)) for run, ack in acks]
        calls.extend((scripts.fetch, keys, args) for _, _, keys, args in fetches)
        self._fetching = True
        try:
            replies = call_many(calls, self._redis)
        finally:
            self._fetching = False
        refused = [(run, ack) for (run, ack), reply in zip(acks, replies, strict=False) if _is_refusal(reply)]
        if refused:  # Redis did not run these acks (READONLY, MISCONF, ...): send them until it does
            self.acknowledge_many(refused)
        self._report_failed_acks(acks, [None if _is_refusal(reply) else reply for reply in replies[: len(acks)]])
        runs = []
        for (order, token, _, _), reply in zip(fetches, replies[len(acks) :], strict=True):
            if isinstance(reply, Exception):
                logger.error("%s: a fetch failed: %s", self.name, reply)
            elif (run := self._run_of(order, token, reply)) is not None:
                runs.append(run)
        return runs

    def _fetch(self, sampler: PrioritySampler[Registration]) -> Run | None:
        order, token, keys, args = self._fetch_call(sampler)
        self._fetching = True
        try:
            result = self._context.scripts.fetch(keys=keys, args=args, client=self._redis)
        finally:
            self._fetching = False
        return self._run_of(order, token, result)

    def _fetch_call(
        self, sampler: PrioritySampler[Registration]
    ) -> tuple[list[Registration], str, list[str], list[str | float]]:
        """(names in the order to try, run token, KEYS, ARGV) of one fetch.lua call."""
        context = self._context
        order = sampler.sample()
        keys = [key for registration in order for key in context.fetch_keys[registration.name]]
        token = f"{context.rng.getrandbits(64):016x}"
        args: list[str | float] = [context.pool_id, context.clock.script_now(), token]
        args.extend(lease_seconds(registration.options.timeout) for registration in order)
        return order, token, keys, args

    def _run_of(self, order: list[Registration], token: str, result: Any) -> Run | None:
        if not result:
            return None
        context = self._context
        payload, group, leased = result
        if int(group) == 0:
            context.complaints.wrong_type(_as_bytes(leased).decode(errors="replace"), "its jobs are skipped")
            return None
        raw = _as_bytes(payload)
        lease = f"{context.pool_id}:{token}:".encode() + raw if _as_bytes(leased) else b""
        return Run(raw, order[int(group) - 1], lease, requeue_as=raw)

    def note_fault(self, exc: Exception) -> None:
        """An executor's loop caught `exc`: log a Redis outage once per dispatcher, anything else every time."""
        if not is_redis_fault(exc):
            logger.exception("%s: unexpected error; continuing", self.name)
        elif self._outage_since is None:
            self._outage_since = time.monotonic()
            logger.warning("%s: Redis unavailable (%s); retrying every %.0f s", self.name, exc, IDLE_POLL)
        else:
            logger.debug("%s: Redis still unavailable (%s)", self.name, exc)

    def _note_redis_reachable(self) -> None:
        if self._outage_since is not None:
            logger.info("%s: Redis reachable again after %.1f s", self.name, time.monotonic() - self._outage_since)
            self._outage_since = None

    # --- starting a run ------------------------------------------------------------------------------------

    def begin(self, run: Run, worker_id: str) -> Job | Finished:
        """`prepare`, the job observed as running on `worker_id`."""
        job = self.prepare(run)
        if not isinstance(job, Finished):
            self._context.observer.started(worker_id, job)
        return job

    def prepare(self, run: Run) -> Job | Finished:
        """The job to hand to the handler (not yet observed); or how the run already ended when the payload is not
        a job (filed dead). A unique job's lock is released as it starts."""
        try:
            job = Job.from_json(run.payload)
        except MalformedJob as exc:
            return self._bury_malformed(run, exc)
        if job.unique:
            job = self._claim_unique(job, run)
        return job

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

    def _bury_malformed(self, run: Run, exc: MalformedJob) -> Finished:
        now = int(self._context.clock.wall())
        reason = f"malformed job payload in queue {run.registration.name}: {exc}"
        logger.error("%s; moved to the dead queue: %r", reason, run.payload[:200])
        dead = malformed_job_record(run.registration.name, run.payload, reason, now)
        self.acknowledge(run, Ack(self._context.keys.dead, 0, dead.to_json(), counted=FAILED, outcome="dead"))
        return Finished(dead, "dead", exc)

    def extend_lease(self, run: Run, job: Job) -> bool:
        """For a job with a time-out, push its lease as far ahead as a new one reaches — only while this run still
        holds it. False when it no longer does: the lease expired (this pool stalled) and the job was recovered."""
        if not run.lease:
            return True
        context, registration = self._context, run.registration
        extended = self._persist(
            lambda: context.scripts.extend_lease(
                keys=[registration.leases_key],
                args=[run.lease, lease_seconds(registration.options.timeout), context.clock.script_now()],
                client=self._redis,
            ),
            f"extend the lease of job {job.id}",
        )
        if not extended:
            logger.error("job %s %s checked in after its lease expired: it was recovered elsewhere", job.name, job.id)
        return bool(extended)

    # --- ending a run --------------------------------------------------------------------------------------

    def ending(self, run: Run, job: Job, error: BaseException | None) -> tuple[Ack, Finished]:
        """How the run is to be filed by what its chain raised, for an ack sent later (with the next fetch); a
        KeyboardInterrupt or SystemExit stops the pool at once."""
        ack = self._context.outcomes.ack_for(run, job, error)
        if isinstance(error, STOPPING_OUTCOMES):
            self._context.stopping.set()
        return ack, Finished(job, ack.outcome, error)

    def acknowledge(self, run: Run, ack: Ack) -> None:
        """Finish the run in one script call, retrying through Redis faults (the job stays in progress meanwhile).

        Safe against a concurrent hand-back of the same run (stop grace): ack.lua files whichever comes first, once.
        """
        self.acknowledge_many([(run, ack)])

    def acknowledge_many(self, acks: Sequence[tuple[Run, Ack]]) -> None:
        """`acknowledge` for several runs, in one round trip (sent again whole after a fault: a repeated ack finds
        its job gone from in progress and changes nothing)."""
        if not acks:
            return
        ack = self._context.scripts.ack
        calls: list[ScriptCall] = [(ack, *self._ack_call(run, outcome)) for run, outcome in acks]
        names = ", ".join(sorted({run.registration.name for run, _ in acks}))
        replies = self._persist(
            lambda: _refusals_raised(call_many(calls, self._redis)), f"finish {len(acks)} {names} job(s)"
        )
        self._report_failed_acks(acks, replies or [])

    def _report_failed_acks(self, acks: Sequence[tuple[Run, Ack]], replies: Sequence[Any]) -> None:
        for (run, _), reply in zip(acks, replies, strict=False):
            if isinstance(reply, Exception):
                logger.error("could not finish a %s job (%s); it stays in progress", run.registration.name, reply)

    def _ack_call(self, run: Run, ack: Ack) -> tuple[list[str], list[str | bytes | float]]:
        """KEYS and ARGV of the ack.lua call that ends `run` as `ack` says."""
        context, registration = self._context, run.registration
        keys = registration.ack_keys(context.keys, context.clock.wall())
        args: list[str | bytes | float] = [
            context.pool_id,
            run.payload,
            "" if ack.delay is None else ack.delay,
            ack.filed,
            ack.counted,
            STATS_LIFETIME,
            run.lease,
            context.clock.script_now(),
        ]
        if ack.destination is not None:
            keys.append(ack.destination)
            if ack.relock is not None:
                keys.append(ack.relock[0])
        args.append(ack.relock[1] if ack.relock is not None else "")
        if ack.extra is not None:
            kind, extra_keys, record, lifetime_ms = ack.extra
            keys.extend(extra_keys)
            args.extend((kind, record, lifetime_ms))
        return keys, args

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


def _is_refusal(reply: object) -> bool:
    """A reply saying Redis did not run the command (READONLY, MISCONF, a cluster refusal): send it again."""
    return isinstance(reply, Exception) and is_redis_fault(reply)


def _refusals_raised(replies: list[Any]) -> list[Any]:
    """`call_many`'s replies, or the first refusal among them raised, so that `_persist` sends them all again (an
    ack sent twice finds its job gone from in progress the second time and changes nothing)."""
    for reply in replies:
        if _is_refusal(reply):
            raise reply
    return replies
