"""Scheduling under concurrency on a real Redis: delayed jobs on time, unique enqueues racing, and cron ticks
enqueued once across pools with skewed clocks and restarts."""

from __future__ import annotations

import threading
import time
from collections import Counter

from integration.job_log import JobLog
from integration.namespace_view import NamespaceView
from integration.pool_factory import PoolFactory
from support import wait_until
from workq import Enqueuer, Job

EVERY_SECOND = "* * * * * *"
START = 1_800_000_000.0


class SteppedClock:
    """A clock the test moves by hand; counts the requeuer's reads, so the test knows it has looked since a step."""

    def __init__(self, now: float) -> None:
        self._now = now
        self._reads = 0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            if threading.current_thread().name == "workq-requeuer":
                self._reads += 1
            return self._now

    def set(self, now: float) -> int:
        """Move to `now`; returns the read count at that moment."""
        with self._lock:
            self._now = now
            return self._reads

    @property
    def reads(self) -> int:
        with self._lock:
            return self._reads


def test_a_delayed_job_runs_at_the_first_requeue_pass_after_its_time_and_never_before(
    make_pool: PoolFactory, namespace: str, view: NamespaceView
) -> None:
    clock = SteppedClock(START)
    log = JobLog()
    pool = make_pool(concurrency=2, clock=clock)
    pool.job("later", log.record)
    scheduled = Enqueuer(namespace, view.client, clock=clock).enqueue_in("later", 5)
    assert scheduled.run_at == START + 5
    pool.start()

    # Each requeue pass reads the clock once per sorted set: 4 reads = at least one whole pass after the step.
    reads = clock.set(START + 4.99)
    wait_until(lambda: clock.reads >= reads + 4, what="a requeue pass at 4.99 s")
    assert len(log) == 0 and len(view.scheduled()) == 1, "ran before its time"

    reads = clock.set(START + 5)
    log.wait_for(1)
    assert clock.reads <= reads + 4 + 2, "not run by the first requeue pass after its time"
    assert log.jobs[0].id == scheduled.id and log.jobs[0].enqueued_at == START + 5


def test_eight_threads_enqueueing_the_same_unique_job_at_once_add_exactly_one(
    enqueuer: Enqueuer, view: NamespaceView
) -> None:
    barrier = threading.Barrier(8)
    results: list[Job | None] = []
    results_lock = threading.Lock()

    def race() -> None:
        barrier.wait()
        job = enqueuer.enqueue_unique("report", {"day": "2026-11-23"})
        with results_lock:
            results.append(job)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 8
    assert sum(job is not None for job in results) == 1
    assert len(view.queued("report")) == 1


def run_ticks(pools_clock_offsets: list[float], make_pool: PoolFactory, log: JobLog, ticks: int) -> None:
    """Run one pool per clock offset, each scheduling the every-second cron, until `ticks` jobs ran."""
    pools = [
        make_pool(concurrency=2, clock=lambda offset=offset: time.time() + offset) for offset in pools_clock_offsets
    ]
    for pool in pools:
        pool.job("tick", log.record)
        pool.periodically_enqueue(EVERY_SECOND, "tick")
        pool.start()
    wait_until(lambda: len(log) >= ticks, timeout=20, what=f"{ticks} cron ticks")
    for pool in pools:
        pool.stop()


def assert_each_tick_once_without_gaps(log: JobLog) -> list[int]:
    runs = Counter(job.id for job in log.jobs)
    assert set(runs.values()) == {1}, f"a tick ran more than once: {runs}"
    fire_times = sorted(int(job_id.rsplit(":", 1)[1]) for job_id in runs)
    assert fire_times == list(range(fire_times[0], fire_times[-1] + 1)), f"gaps in {fire_times}"
    return fire_times


def test_three_pools_with_clocks_seconds_apart_enqueue_each_tick_once(make_pool: PoolFactory) -> None:
    log = JobLog()
    run_ticks([0.0, -4.0, 3.0], make_pool, log, ticks=4)
    assert_each_tick_once_without_gaps(log)


def test_a_restarted_pool_neither_repeats_past_ticks_nor_skips_the_next(make_pool: PoolFactory) -> None:
    log = JobLog()
    run_ticks([0.0], make_pool, log, ticks=2)
    first_run = len(log)
    run_ticks([-3.0], make_pool, log, ticks=first_run + 2)  # restarted on a host whose clock is behind
    fire_times = assert_each_tick_once_without_gaps(log)
    assert len(fire_times) >= first_run + 2
