"""Time limits on real Redis: a run past its `timeout` is interrupted in its thread, counted as a failure, retried
after its backoff and dead after `max_fails` — one run at a time, never an endless loop; a checkin extends the limit;
`job.cancelled` turns true; a run that does not return is abandoned and counted."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from integration.interruptible import Runs, steps_of_sleep
from integration.namespace_view import NamespaceView
from integration.pool_factory import PoolFactory
from support import wait_until
from workq import Enqueuer, Job, JobTimeout
from workq import time_limits as time_limits_module


def one_second(job: Job) -> int:
    return 1


def test_a_run_past_its_time_limit_is_interrupted_counted_and_dead_after_max_fails_one_run_at_a_time(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    """The issue's case: a 6 s body, timeout=2, max_fails=2. Before, it ran 8+ times in 30 s, two at once."""
    runs = Runs()
    pool = make_pool(concurrency=2)
    pool.job("build_report", lambda job: steps_of_sleep(job, runs, 6), timeout=2, max_fails=2, backoff=one_second)
    pool.start()
    job = enqueuer.enqueue("build_report", {})

    [dead] = wait_until(view.dead, timeout=30, what="the job to be dead after two timed-out runs")

    assert dead.fields["id"] == job.id and dead.fields["fails"] == 2
    assert "timed out" in dead.fields["err"] and "2 s time limit" in dead.fields["err"]
    ended = runs.ended()
    assert [(r.raised, r.completed, r.saw_cancelled) for r in ended] == [("JobTimeout", False, True)] * 2
    assert all(record.ended - record.started < 6 for record in ended), "each run was cut short"
    assert runs.overlapping() == [], "the second run started only once the first had ended"
    assert view.queued("build_report") == [] and view.retry() == [], "nothing left to run it again"
    assert view.idle_problems("build_report", pool.pool_id) == []
    assert len(runs.records) == 2


def test_a_handler_that_swallows_the_interrupt_still_times_out_and_sees_job_cancelled(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    seen: list[bool] = []

    def stubborn(job: Job) -> None:
        while not job.cancelled:
            with contextlib.suppress(JobTimeout):  # swallowed: the loop stops on job.cancelled instead
                time.sleep(0.01)
        seen.append(job.cancelled)

    pool = make_pool()
    pool.job("stubborn", stubborn, timeout=1, max_fails=1)
    pool.start()
    enqueuer.enqueue("stubborn", {})
    [dead] = wait_until(view.dead, timeout=15, what="the timed-out run to be filed dead")
    assert seen == [True]
    assert "timed out" in dead.fields["err"] and dead.fields["fails"] == 1


def test_a_handler_in_time_sleep_is_interrupted_when_the_sleep_returns(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    """time.sleep is a C call: the interrupt lands as it returns (before the next statement), within the abandon
    grace, so the run is not abandoned: it is filed by its own thread, as timed out."""
    after_sleep: list[bool] = []

    def sleeper(job: Job) -> None:
        time.sleep(2.5)
        after_sleep.append(True)

    pool = make_pool()
    pool.job("sleeper", sleeper, timeout=1, max_fails=1)
    pool.start()
    enqueuer.enqueue("sleeper", {})
    [dead] = wait_until(view.dead, timeout=15, what="the timed-out run to be filed dead")
    assert after_sleep == [], "the statement after the sleep never ran"
    assert "timed out" in dead.fields["err"]


def test_a_run_that_does_not_return_is_abandoned_and_counted_while_its_thread_keeps_the_slot(
    make_pool: PoolFactory,
    enqueuer: Enqueuer,
    view: NamespaceView,
    release: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(time_limits_module, "ABANDON_AFTER", 0.5)
    ran: list[str] = []

    def stuck(job: Job) -> None:
        ran.append(job.id)
        release.wait(30)  # a C call: deaf to the interrupt until it returns

    pool = make_pool(concurrency=1)
    pool.job("stuck", stuck, timeout=1, max_fails=1)
    pool.job("next", lambda job: ran.append("next"))
    pool.start()
    enqueuer.enqueue("stuck", {})
    [dead] = wait_until(view.dead, timeout=15, what="the abandoned run to be counted")
    assert "timed out" in dead.fields["err"] and dead.fields["fails"] == 1
    enqueuer.enqueue("next", {})
    time.sleep(1.5)  # a negative: long enough for the one worker to have run `next`, were its slot free
    assert ran == [dead.fields["id"]], "the stuck thread keeps its slot"

    release.set()
    wait_until(lambda: "next" in ran, timeout=10, what="the worker to take the next job once the stuck call returned")
    assert len(view.dead()) == 1, "the late return of the abandoned run files nothing"
    assert view.idle_problems("stuck", pool.pool_id) == []


def test_a_checkin_gives_the_run_its_whole_time_limit_again(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    finished: list[str] = []

    def checks_in(job: Job) -> None:
        for step in range(6):
            time.sleep(0.4)
            job.checkin(f"step {step}")
        finished.append(job.id)

    pool = make_pool()
    pool.job("checks_in", checks_in, timeout=1, max_fails=1)
    pool.start()
    job = enqueuer.enqueue("checks_in", {})
    pool.drain(timeout=20)
    assert finished == [job.id], "2.4 s of work under a 1 s limit, checked in every 0.4 s"
    assert view.dead() == [] and view.retry() == []


def test_a_checkin_after_the_run_was_stopped_raises_again(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    raised: list[str] = []

    def keeps_going(job: Job) -> None:
        try:
            while True:
                time.sleep(0.01)
        except JobTimeout:
            pass
        try:
            job.checkin("still here")
        except JobTimeout as exc:
            raised.append(str(exc))
            raise

    pool = make_pool()
    pool.job("keeps_going", keeps_going, timeout=0.5, max_fails=1)
    pool.start()
    enqueuer.enqueue("keeps_going", {})
    wait_until(view.dead, timeout=15, what="the run to be filed dead")
    assert len(raised) == 1 and "timed out" in raised[0]
