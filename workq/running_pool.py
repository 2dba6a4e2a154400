"""One run of a WorkerPool, from start() to stop(): worker threads, background loops, heartbeat, observations."""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence

from workq.background import BackgroundLoop
from workq.cancels import CancelListener
from workq.clock import Clock
from workq.complaints import Complaints
from workq.connection import RedisClient
from workq.heartbeat import Heartbeater, Observer
from workq.keys import Keys
from workq.orphans import OrphanSweeper
from workq.periodic import INTERVAL as PERIODIC_INTERVAL
from workq.periodic import CronSchedule, PeriodicEnqueuer
from workq.priority_sampler import PrioritySampler
from workq.reaper import Reaper
from workq.registration import Registration
from workq.requeuer import Requeuer
from workq.scripts import Scripts
from workq.throughput import FLUSH_INTERVAL as THROUGHPUT_FLUSH_INTERVAL
from workq.throughput import RunTally
from workq.time_limits import Watchdog
from workq.timeouts import LeaseKeeper
from workq.wakeup import WakeSignal, Wakeup
from workq.worker import Finished, InFlight, Worker, WorkerContext

logger = logging.getLogger("workq")

REQUEUE_INTERVAL = 1.0
LEASE_CHECK_INTERVAL = 1.0
OBSERVER_FLUSH_INTERVAL = 0.5
STOP_SETTLE = 2.0
"""Seconds `stop(grace)` gives the clean-up after the grace period before it returns anyway (Redis stalled)."""


class RunningPool:
    """Everything a started pool runs. `stop(grace)` hands back the jobs of handlers that outlive the grace."""

    def __init__(
        self,
        *,
        client: RedisClient,
        keys: Keys,
        pool_id: str,
        registrations: Mapping[str, Registration],
        schedules: Sequence[CronSchedule],
        concurrency: int,
        heartbeat_interval: float,
        dead_after: float,
        clock: Clock,
        rng: random.Random,
        stopping: threading.Event,
        wakeup: Wakeup,
        in_flight: InFlight,
        tally: RunTally,
    ) -> None:
        scripts = Scripts.register(client)
        self._tally = tally
        self._wakeup = wakeup
        self._stopping = stopping
        self._observer = Observer(client, keys, clock)
        self._wake_signal = WakeSignal(client, keys, list(registrations), wakeup)
        self._watchdog = Watchdog()
        self._cancel_listener = CancelListener(client, keys, self._watchdog)
        context = WorkerContext(
            client=client,
            keys=keys,
            scripts=scripts,
            pool_id=pool_id,
            registrations=registrations,
            fetch_keys={name: registration.fetch_keys(keys) for name, registration in registrations.items()},
            sampler=PrioritySampler([(r, r.options.priority) for r in registrations.values()], rng),
            clock=clock,
            rng=rng,
            stopping=stopping,
            wakeup=wakeup,
            wake_signal=self._wake_signal,
            in_flight=in_flight,
            observer=self._observer,
            complaints=Complaints(),
            watchdog=self._watchdog,
        )
        self._workers = [Worker(secrets.token_hex(12), context) for _ in range(concurrency)]
        self._threads: list[threading.Thread] = []
        self._heartbeater = Heartbeater(
            client,
            keys,
            pool_id=pool_id,
            max_concurrency={name: r.options.max_concurrency for name, r in registrations.items()},
            concurrency=concurrency,
            worker_ids=[worker.worker_id for worker in self._workers],
            heartbeat_interval=heartbeat_interval,
            dead_after=dead_after,
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
                wakeup.notify()

        def reap_and_wake() -> None:
            if reaper.reap():
                wakeup.notify()

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
        self._loops.append(BackgroundLoop("orphan-sweeper", max(1.0, heartbeat_interval), sweeper.sweep, rng=rng))
        self._periodic: PeriodicEnqueuer | None = None
        if schedules:
            self._periodic = periodic = PeriodicEnqueuer(client, keys, scripts, schedules, clock)
            self._loops.append(BackgroundLoop("periodic-enqueuer", PERIODIC_INTERVAL, periodic.enqueue_coming, rng=rng))
        lease_keeper = LeaseKeeper(client, keys, scripts, list(registrations.values()), clock, rng=rng)
        if any(registration.options.timeout for registration in registrations.values()):
            self._loops.append(BackgroundLoop("timeouts", LEASE_CHECK_INTERVAL, lease_keeper.expire_due, rng=rng))

    @property
    def stuck_runs(self) -> int:
        return self._watchdog.stuck

    def _held_payloads(self) -> Counter[bytes]:
        return Counter(payload for worker in self._workers if (payload := worker.held_payload) is not None)

    def _held_leases(self) -> set[bytes]:
        return {lease for worker in self._workers if (lease := worker.held_lease)}

    def start(self) -> None:
        """Beat once before any worker fetches: reapers treat job holders without a heartbeat as dead."""
        self._heartbeater.beat()
        self._wake_signal.start()
        self._watchdog.start()
        self._cancel_listener.start()
        for index, worker in enumerate(self._workers):
            thread = threading.Thread(target=worker.run, name=f"workq-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        for loop in self._loops:
            loop.start()

    # --- driven step by step from the calling thread, with no thread started (workq.testing) --------------------

    def beat(self) -> None:
        """Register the pool and its jobs' caps, as `start()` does before any fetch."""
        self._heartbeater.beat()

    def work_one(self) -> Finished | None:
        """Fetch one job and run it to its acknowledgement in the calling thread; None when none can be fetched."""
        return self._workers[0].work_one()

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
        self._wakeup.notify()
        deadline = None if grace is None else time.monotonic() + grace
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        stragglers = [worker for worker, thread in zip(self._workers, self._threads, strict=True) if thread.is_alive()]
        handed_back: list[int] = []

        def settle() -> None:
            handed_back.append(sum(worker.abandon() for worker in stragglers))
            for loop in self._loops:
                loop.stop()
            self._wake_signal.stop()
            self._cancel_listener.stop()
            self._watchdog.stop()
            if any(worker.fetching for worker in self._workers):
                logger.warning("a fetch is still in flight: the pool stays registered; the reaper will remove it")
            else:
                self._flush_and_deregister()

        settling = threading.Thread(target=settle, name="workq-stop", daemon=True)
        settling.start()
        settling.join(None if grace is None else STOP_SETTLE)
        if settling.is_alive():
            logger.warning("Redis did not answer within %s s of the grace period: stopping without it", STOP_SETTLE)
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
