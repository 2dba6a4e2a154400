"""One run of a WorkerPool, from start() to stop(): worker threads, background loops, heartbeat, observations."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence

from workq.async_runner import AsyncRunner
from workq.background import BackgroundLoop
from workq.cancels import CancelSignal
from workq.channel_listener import ChannelListener
from workq.clock import Clock
from workq.complaints import Complaints
from workq.connection import RedisClient
from workq.dispatch_loop import Inbox
from workq.event_loop import EventLoopThread
from workq.heartbeat import Heartbeater, Observer
from workq.keys import Keys
from workq.orphans import OrphanSweeper
from workq.periodic import INTERVAL as PERIODIC_INTERVAL
from workq.periodic import CronSchedule, PeriodicEnqueuer
from workq.pool_context import InFlight, WorkerContext
from workq.priority_sampler import PrioritySampler
from workq.reaper import Reaper
from workq.registration import Registration
from workq.requeuer import Requeuer
from workq.run import Finished, Outcomes
from workq.scripts import Scripts
from workq.thread_runner import ThreadRunner
from workq.throughput import FLUSH_INTERVAL as THROUGHPUT_FLUSH_INTERVAL
from workq.throughput import RunTally
from workq.tick_pruner import INTERVAL as TICK_PRUNE_INTERVAL
from workq.tick_pruner import TickPruner
from workq.time_limits import Watchdog
from workq.timeouts import LeaseKeeper
from workq.wakeup import WakeSignal

logger = logging.getLogger("workq")

REQUEUE_INTERVAL = 1.0
LEASE_CHECK_INTERVAL = 1.0
OBSERVER_FLUSH_INTERVAL = 0.5
STOP_SETTLE = 2.0
"""Seconds `stop(grace)` gives the clean-up after the grace period before it returns anyway (Redis stalled)."""


class RunningPool:
    """Everything a started pool runs: `concurrency` worker threads for the sync handlers' jobs, the async runner
    (on `event_loop`, `async_concurrency` slots) for the async ones. `stop(grace)` hands back the jobs of handlers
    that outlive the grace."""

    def __init__(
        self,
        *,
        client: RedisClient,
        keys: Keys,
        pool_id: str,
        registrations: Mapping[str, Registration],
        schedules: Sequence[CronSchedule],
        concurrency: int,
        async_concurrency: int,
        event_loop: EventLoopThread | None,
        heartbeat_interval: float,
        dead_after: float,
        clock: Clock,
        rng: random.Random,
        stopping: threading.Event,
        in_flight: InFlight,
        tally: RunTally,
    ) -> None:
        scripts = Scripts.register(client)
        self._tally = tally
        self._stopping = stopping
        self._observer = Observer(client, keys, clock)
        on_threads = [registration for registration in registrations.values() if not registration.on_loop]
        on_loop = [registration for registration in registrations.values() if registration.on_loop]
        thread_inbox, async_inbox = Inbox(), Inbox()
        self._wakeups = (thread_inbox, async_inbox)
        self._wake_signal = WakeSignal(
            client, keys, {r.name: async_inbox if r.on_loop else thread_inbox for r in registrations.values()}
        )
        self._watchdog = Watchdog()
        cancel_signal = CancelSignal(client, keys, self.cancel_running, self._running_job_ids)
        self._listener = ChannelListener(client, [self._wake_signal.channel, cancel_signal.channel])
        context = WorkerContext(
            client=client,
            keys=keys,
            scripts=scripts,
            pool_id=pool_id,
            registrations=registrations,
            fetch_keys={name: registration.fetch_keys(keys) for name, registration in registrations.items()},
            clock=clock,
            rng=rng,
            stopping=stopping,
            wake_signal=self._wake_signal,
            in_flight=in_flight,
            observer=self._observer,
            complaints=Complaints(),
            outcomes=Outcomes(keys, clock, rng),
            watchdog=self._watchdog,
        )
        self._thread_runner: ThreadRunner | None = None
        if on_threads:
            self._thread_runner = ThreadRunner(context, _sampler(on_threads, rng), thread_inbox, concurrency)
        self._event_loop = event_loop
        self._async_runner: AsyncRunner | None = None
        if on_loop:
            if event_loop is None:
                raise ValueError("async handlers need the pool's event loop")
            self._async_runner = AsyncRunner(
                context, _sampler(on_loop, rng), async_inbox, event_loop, async_concurrency
            )
        worker_ids = [] if self._thread_runner is None else list(self._thread_runner.worker_ids)
        if self._async_runner is not None:
            worker_ids.extend(self._async_runner.worker_ids)
        self._heartbeater = Heartbeater(
            client,
            keys,
            pool_id=pool_id,
            max_concurrency={name: r.options.max_concurrency for name, r in registrations.items()},
            concurrency=len(worker_ids),
            worker_ids=worker_ids,
            heartbeat_interval=heartbeat_interval,
            dead_after=dead_after,
            schedules=schedules,
            clock=clock,
        )
        self._requeuer = requeuer = Requeuer(client, keys, scripts, clock)
        reap_interval = max(heartbeat_interval, dead_after / 4)
        reaper = Reaper(
            client,
            keys,
            scripts,
            pool_id=pool_id,
            dead_after=dead_after,
            lock_for=reap_interval,
            clock=clock,
            own_beats=self._heartbeater.own_beats,
        )

        def requeue_and_wake() -> None:
            if requeuer.requeue_due():
                self.wake_all()

        def reap_and_wake() -> None:
            if reaper.reap():
                self.wake_all()

        self._loops = [
            # A heartbeat retries at its own pace through faults: backing off could get a live pool reaped.
            BackgroundLoop(
                "heartbeat", heartbeat_interval, self._heartbeater.beat, max_error_wait=heartbeat_interval, rng=rng
            ),
            BackgroundLoop("observer", OBSERVER_FLUSH_INTERVAL, self._observer.flush, rng=rng),
            BackgroundLoop("throughput", THROUGHPUT_FLUSH_INTERVAL, tally.flush, rng=rng),
            BackgroundLoop("requeuer", REQUEUE_INTERVAL, requeue_and_wake, rng=rng),
            BackgroundLoop("reaper", reap_interval, reap_and_wake, rng=rng),
        ]
        sweeper = OrphanSweeper(
            client,
            keys,
            scripts,
            pool_id=pool_id,
            registrations=list(registrations.values()),
            held=self._held_payloads,
            held_leases=self._held_leases,
            clock=clock.wall,
        )
        pruner = TickPruner(client, keys, scripts, clock)
        self._loops.append(BackgroundLoop("tick-pruner", TICK_PRUNE_INTERVAL, pruner.prune, rng=rng))
        self._loops.append(BackgroundLoop("orphan-sweeper", max(1.0, heartbeat_interval), sweeper.sweep, rng=rng))
        self._periodic: PeriodicEnqueuer | None = None
        if schedules:
            self._periodic = periodic = PeriodicEnqueuer(client, keys, scripts, schedules, clock)
            self._loops.append(BackgroundLoop("periodic-enqueuer", PERIODIC_INTERVAL, periodic.enqueue_coming, rng=rng))
        lease_keeper = LeaseKeeper(client, keys, scripts, list(registrations.values()), clock, rng=rng)
        if any(registration.options.timeout for registration in registrations.values()):
            self._loops.append(BackgroundLoop("timeouts", LEASE_CHECK_INTERVAL, lease_keeper.expire_due, rng=rng))

    def wake_all(self) -> None:
        """Wake every idle dispatch thread (jobs were made available at once, or the pool is stopping)."""
        for wakeup in self._wakeups:
            wakeup.notify()

    def _held_payloads(self) -> Counter[bytes]:
        held: Counter[bytes] = Counter()
        for runner in (self._thread_runner, self._async_runner):
            if runner is not None:
                held.update(runner.dispatch.held_payloads())
        return held

    def cancel_running(self, job_id: str) -> bool:
        """Interrupt job `job_id` if this pool runs it (`Client.cancel`): a thread's run gets `Cancelled` raised in
        it, an async run's task is cancelled."""
        found = self._watchdog.cancel(job_id)
        if self._async_runner is not None:
            found = self._async_runner.cancel(job_id) or found
        return found

    def _running_job_ids(self) -> set[str]:
        running = self._watchdog.running_job_ids()
        if self._async_runner is not None:
            running |= self._async_runner.running_job_ids()
        return running

    @property
    def stuck_runs(self) -> int:
        return self._watchdog.stuck

    def _held_leases(self) -> set[bytes]:
        held: set[bytes] = set()
        for runner in (self._thread_runner, self._async_runner):
            if runner is not None:
                held.update(runner.dispatch.held_leases())
        return held

    def start(self) -> None:
        """Beat once before any worker fetches: reapers treat job holders without a heartbeat as dead. The
        dispatch threads' connections are opened first: once registered, the pool has every connection it needs."""
        for runner in (self._thread_runner, self._async_runner):
            if runner is not None:
                runner.dispatch.connect()
        self._heartbeater.beat()
        self._watchdog.start()
        self._listener.start()
        if self._event_loop is not None:
            self._event_loop.start()
        if self._async_runner is not None:
            self._async_runner.start()
        if self._thread_runner is not None:
            self._thread_runner.start()
        for loop in self._loops:
            loop.start()

    # --- driven step by step from the calling thread, with no thread started (workq.testing) --------------------

    def beat(self) -> None:
        """Register the pool and its jobs' caps, as `start()` does before any fetch."""
        self._heartbeater.beat()

    def work_one(self) -> Finished | None:
        """Fetch one job and run it to its acknowledgement in the calling thread; None when none can be fetched.
        (In a pool built inline every chain is a thread chain: async layers are awaited on the event loop, which
        starts on first use; `close()` stops it.)"""
        if self._event_loop is not None:
            self._event_loop.ensure_started()
        if self._thread_runner is None:
            raise ValueError("a pool built inline runs every job on its thread runner")
        return self._thread_runner.work_one()

    def close(self) -> None:
        """For a pool driven step by step: stop its event loop, if it started one."""
        if self._event_loop is not None:
            self._event_loop.stop(STOP_SETTLE)

    def enqueue_cron(self) -> int:
        """One pass of the periodic enqueuer (cron fire times of the coming minutes into the scheduled set)."""
        return 0 if self._periodic is None else self._periodic.enqueue_coming()

    def next_cron_fire(self, after: float) -> float | None:
        """The first cron fire time after `after`, or None when the pool has no schedules."""
        return None if self._periodic is None else self._periodic.next_fire_after(after)

    def requeue_due(self) -> int:
        """One pass of the requeuer: due scheduled and retry jobs back to their queues."""
        return self._requeuer.requeue_due()

    def stop(self, grace: float | None) -> int:
        """Stop fetching; wait for in-flight jobs (at most `grace` seconds when given), hand back the rest, then
        stop the loops and deregister. Returns how many jobs were handed back.

        With a grace period, the clean-up after it gets at most `STOP_SETTLE` seconds, so `stop()` returns even
        while Redis stalls; what it could not do then (hand a job back, deregister) the reaper does later. The
        pool deregisters only when no fetch is in flight: a fetch still on its way when the pool is gone from
        `worker_pools` would hold a job that a reaper could hand to another pool while this one ran it.
        """
        self._stopping.set()
        self.wake_all()
        threads, runner = self._thread_runner, self._async_runner
        if threads is not None:
            threads.stop_fetching()
        if runner is not None:
            runner.stop_fetching()
        deadline = None if grace is None else time.monotonic() + grace

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        threads_done = threads is None or threads.join(left())
        async_idle = runner is None or runner.wait_idle(left())
        handed_back: list[int] = []

        def settle() -> None:
            count = 0
            for executor, done in ((threads, threads_done), (runner, async_idle)):
                if executor is not None:
                    count += 0 if done else executor.abandon()
                    executor.close()
            handed_back.append(count)
            for loop in self._loops:
                loop.stop()
            self._listener.stop()
            self._watchdog.stop()
            if any(executor is not None and executor.dispatch.fetching for executor in (threads, runner)):
                logger.warning("a fetch is still in flight: the pool stays registered; the reaper will remove it")
            else:
                self._flush_and_deregister()

        settling = threading.Thread(target=settle, name="workq-stop", daemon=True)
        settling.start()
        settling.join(None if grace is None else STOP_SETTLE)
        if settling.is_alive():
            logger.warning("Redis did not answer within %s s of the grace period: stopping without it", STOP_SETTLE)
        if self._event_loop is not None:
            self._event_loop.stop(STOP_SETTLE)
        count = handed_back[0] if handed_back else 0
        if count:
            logger.warning("%d job(s) still running after the %s s grace period: back on their queues", count, grace)
        return count

    def _flush_and_deregister(self) -> None:
        try:
            self._observer.flush()
            self._tally.flush()
            self._heartbeater.remove()
        except Exception as exc:  # Redis gone at shutdown: the reaper will clean up after us
            logger.warning("could not deregister the pool (%s); the reaper will remove it", exc)


def _sampler(registrations: list[Registration], rng: random.Random) -> PrioritySampler[Registration]:
    return PrioritySampler([(registration, registration.options.priority) for registration in registrations], rng)
