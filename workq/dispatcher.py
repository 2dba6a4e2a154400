"""Fetching jobs and acknowledging their runs: the Redis side of running jobs, shared by both executors.

Each dispatch thread of a pool (`workq.dispatch_loop`) owns one `Dispatcher` and its connection: one round trip files
the runs that ended (one ack.lua call) and fetches up to K jobs (one fetch.lua call). Executors never touch Redis for
a job otherwise, except through a shared `Dispatcher` for single runs (lease extensions, runs the watchdog
abandoned).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis

from workq import unique
from workq.connection import dedicated_client, is_redis_fault
from workq.errors import MalformedJob
from workq.job import Job, malformed_job_record
from workq.pool_context import WorkerContext
from workq.priority_sampler import PrioritySampler
from workq.registration import Registration
from workq.run import FAILED, STOPPING_OUTCOMES, Ack, AckCall, Finished, Run
from workq.scripts import ScriptCall, call_many
from workq.time_limits import lease_seconds

logger = logging.getLogger("workq")
_T = TypeVar("_T")

IDLE_POLL = 1.0
"""Seconds an idle worker waits before looking again when no wake-up comes (jobs pushed by gocraft/work
enqueuers, or a wake-up lost to a dropped connection)."""

ACK_GIVE_UP_WHEN_STOPPING = 10.0
"""While stopping, stop retrying an ack after this long; the job stays in progress for the reaper."""


@dataclass(frozen=True)
class _FetchShape:
    """The KEYS of a fetch.lua call over some job names, their leases' lengths (ARGV), and each name's group number
    (1-based, in KEYS order)."""

    keys: list[str]
    leases: list[float]
    groups: dict[str, int]


class Dispatcher:
    """Fetches and acknowledges jobs over one connection of its own, used by one thread at a time; or, not
    `dedicated`, over the pool's shared client, by any thread (the calls of single runs: checkins, hand-backs)."""

    def __init__(self, name: str, context: WorkerContext, dedicated: bool = True) -> None:
        self.name = name
        self._context = context
        self._redis = dedicated_client(context.client) if dedicated else context.client
        self._fetching = False
        self._outage_since: float | None = None
        self._shapes: dict[int, _FetchShape] = {}

    def close(self) -> None:
        if self._redis is not self._context.client:
            self._redis.close()

    @property
    def fetching(self) -> bool:
        """True while a fetch call is on its way to or from Redis."""
        return self._fetching

    # --- fetching ------------------------------------------------------------------------------------------

    def exchange(self, acks: Sequence[tuple[Run, Ack]], order: PrioritySampler[Registration], count: int) -> list[Run]:
        """Finish runs and fetch up to `count` new ones in one round trip, acks first (so the slots and
        max_concurrency counts they free are free for the fetches), each job's name tried in an `order` sample.
        The acks are sent until Redis answers; the fetch is not sent again after a fault (a fetch whose reply was
        lost leaves its jobs in this pool's in-progress list, where the orphan sweeper finds them). Call it with
        the jobs it may fetch counted in `in_flight`."""
        context = self._context
        if count == 0:
            self.acknowledge_many(acks)
            return []
        try:
            runs = self._fetch(order, count, acks)
        except Exception as exc:
            if acks and is_redis_fault(exc):
                self.acknowledge_many(acks)
            raise
        if not runs and not context.wake_signal.marked():
            # Mark the names as waited for, then look once more: an enqueue in between is either seen by this
            # fetch or publishes a wake-up. (A mark that stands made the fetch above that last look.)
            context.wake_signal.mark_waiting()
            runs = self._fetch(order, count)
        if runs:
            context.wake_signal.found_jobs()
        self._note_redis_reachable()
        if runs and context.stopping.is_set():
            # The pool began stopping while this fetch was on its way: the jobs must not start now (the pool may
            # be deregistering, and a reaper would then run them elsewhere too).
            self.acknowledge_many([(run, run.hand_back()) for run in reversed(runs)])
            return []
        return runs

    def _fetch(
        self, sampler: PrioritySampler[Registration], count: int, acks: Sequence[tuple[Run, Ack]] = ()
    ) -> list[Run]:
        """Up to `count` jobs in one fetch.lua call, after one ack.lua call filing `acks` in the same round trip."""
        scripts = self._context.scripts
        slots, keys, args = self._fetch_call(sampler, count)
        calls: list[ScriptCall] = []
        if acks:
            ack_call = self._ack_call(acks)
            calls.append((scripts.ack, ack_call.keys, ack_call.args))
        calls.append((scripts.fetch, keys, args))
        self._fetching = True
        try:
            replies = call_many(calls, self._redis)
        finally:
            self._fetching = False
        if acks:
            if _is_refusal(replies[0]):  # Redis did not run the acks (READONLY, MISCONF, ...): send them until it does
                self.acknowledge_many(acks)
            else:
                self._report_failed_acks(acks, replies[0])
        if isinstance(replies[-1], Exception):
            logger.error("%s: a fetch failed: %s", self.name, replies[-1])
            return []
        return self._runs_of(sampler, slots, replies[-1])

    def _fetch_call(
        self, sampler: PrioritySampler[Registration], count: int
    ) -> tuple[list[str], list[str], list[str | float]]:
        """(each slot's run token, KEYS, ARGV) of one fetch.lua call taking up to `count` jobs."""
        context = self._context
        shape = self._shape(sampler)
        args: list[str | float] = [context.pool_id, context.clock.script_now(), count, *shape.leases]
        tokens = []
        for _ in range(count):
            token = f"{context.rng.getrandbits(64):016x}"
            tokens.append(token)
            args.append(token)
            args.extend(shape.groups[registration.name] for registration in sampler.sample())
        return tokens, shape.keys, args

    def _shape(self, sampler: PrioritySampler[Registration]) -> _FetchShape:
        """What every fetch.lua call over `sampler`'s job names sends alike (worked out once)."""
        shape = self._shapes.get(id(sampler))
        if shape is None:
            context, names = self._context, sampler.items
            shape = _FetchShape(
                keys=[key for registration in names for key in context.fetch_keys[registration.name]],
                leases=[lease_seconds(registration.options.timeout) for registration in names],
                groups={registration.name: n for n, registration in enumerate(names, 1)},
            )
            self._shapes[id(sampler)] = shape
        return shape

    def _runs_of(self, sampler: PrioritySampler[Registration], tokens: list[str], reply: Any) -> list[Run]:
        """The runs of a fetch.lua reply, in the order fetched (each slot's token names its lease)."""
        context = self._context
        broken = _as_bytes(reply[0])
        if broken:
            context.complaints.wrong_type(broken.decode(errors="replace"), "its jobs are skipped")
        registrations = sampler.items
        runs = []
        for slot, at in enumerate(range(1, len(reply), 3)):
            raw, group, leased = _as_bytes(reply[at]), int(reply[at + 1]), reply[at + 2]
            lease = f"{context.pool_id}:{tokens[slot]}:".encode() + raw if _as_bytes(leased) else b""
            runs.append(Run(raw, registrations[group - 1], lease, requeue_as=raw))
        return runs

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
        """`acknowledge` for several runs, in one ack.lua call (sent again whole after a fault: a repeated ack finds
        its job gone from in progress and changes nothing). Runs are filed in the order given."""
        if not acks:
            return
        call = self._ack_call(acks)
        names = ", ".join(sorted({run.registration.name for run, _ in acks}))
        replies = self._persist(lambda: self._send_acks(call), f"finish {len(acks)} {names} job(s)")
        if replies is not None:
            self._report_failed_acks(acks, replies)

    def _send_acks(self, call: AckCall) -> Any:
        """ack.lua's reply, or the error it answered with unless Redis refused to run it (raised: send it again)."""
        try:
            return self._context.scripts.ack(keys=call.keys, args=call.args, client=self._redis)
        except redis.ResponseError as exc:
            if is_redis_fault(exc):
                raise
            return exc

    def _report_failed_acks(self, acks: Sequence[tuple[Run, Ack]], replies: Any) -> None:
        """Log the runs ack.lua left in progress (its reply for a run is then a message), or a whole call that
        failed (an error reply Redis did not refuse as a fault)."""
        if isinstance(replies, Exception):
            logger.error("could not finish %d job(s) (%s); they stay in progress", len(acks), replies)
            return
        for (run, _), reply in zip(acks, replies, strict=False):
            if isinstance(reply, (bytes, str)):
                logger.error(
                    "could not finish a %s job (%s); it stays in progress",
                    run.registration.name,
                    _as_bytes(reply).decode(errors="replace"),
                )

    def _ack_call(self, acks: Sequence[tuple[Run, Ack]]) -> AckCall:
        """The ack.lua call that ends each run as its `Ack` says."""
        context = self._context
        call = AckCall(context.pool_id, context.clock.script_now())
        wall = context.clock.wall()
        keys_of: dict[str, list[str]] = {}  # worked out once per job name and call
        for run, ack in acks:
            registration = run.registration
            run_keys = keys_of.get(registration.name)
            if run_keys is None:
                run_keys = keys_of[registration.name] = registration.ack_keys(context.keys, wall)
            call.add(run_keys, run.payload, ack, run.lease)
        return call

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
