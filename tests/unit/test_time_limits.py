"""The watchdog on its own: a run past its limit is interrupted once in its own thread, a checkin pushes the limit,
a cancel interrupts, a run that does not return is abandoned, and nothing lands in the worker after the run."""

from __future__ import annotations

import contextlib
import threading
import time

from support import wait_until
from workq import Cancelled, Job, JobTimeout
from workq.time_limits import CANCELLED, TIMED_OUT, RunControl, ThreadInterrupter, Watchdog, lease_seconds


def run_in_thread(watchdog: Watchdog, job: Job, limit: float, body: object) -> dict[str, object]:
    """Run `body(job)` under the watchdog on a thread of its own; returns what happened once it ended."""
    outcome: dict[str, object] = {}
    abandoned = threading.Event()

    def work() -> None:
        control = watchdog.watch(job, limit, ThreadInterrupter(threading.get_ident()), lambda c: abandoned.set())
        outcome["control"] = control
        outcome["error"] = watchdog.run(control, lambda: body(job))  # type: ignore[operator]
        time.sleep(0.05)  # worker code after the run: nothing may land here
        outcome["after"] = "clean"

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(20)
    outcome["abandoned"] = abandoned.is_set()
    return outcome


def steps(seconds: float) -> object:
    def body(job: Job) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.005)

    return body


def test_a_run_past_its_limit_is_interrupted_with_job_timeout_and_marked() -> None:
    watchdog = Watchdog(abandon_after=5)
    watchdog.start()
    try:
        job = Job(name="slow")
        outcome = run_in_thread(watchdog, job, 0.2, steps(10))
    finally:
        watchdog.stop()
    control = outcome["control"]
    assert isinstance(control, RunControl) and control.reason == TIMED_OUT
    assert isinstance(outcome["error"], JobTimeout)
    assert job.cancelled and outcome["after"] == "clean" and not outcome["abandoned"]
    assert "timed out" in control.describe() and "0.2 s" in control.describe()


def test_a_run_that_returns_in_time_is_left_alone_and_the_watchdog_forgets_it() -> None:
    watchdog = Watchdog()
    watchdog.start()
    try:
        job = Job(name="quick")
        outcome = run_in_thread(watchdog, job, 5, steps(0.05))
        assert watchdog.running_job_ids() == set()
    finally:
        watchdog.stop()
    assert outcome["error"] is None and not job.cancelled


def test_a_cancel_interrupts_with_cancelled_and_wins_over_a_time_out() -> None:
    watchdog = Watchdog(abandon_after=5)
    watchdog.start()
    job = Job(name="long")
    try:
        canceller = threading.Timer(0.1, lambda: watchdog.cancel(job.id))
        canceller.start()
        outcome = run_in_thread(watchdog, job, 0, steps(10))
    finally:
        watchdog.stop()
    control = outcome["control"]
    assert isinstance(outcome["error"], Cancelled) and isinstance(control, RunControl)
    assert control.reason == CANCELLED and control.describe().startswith("cancelled")
    assert watchdog.cancel("no-such-job") is False


def test_a_run_that_swallows_the_interrupt_and_carries_on_is_abandoned_once() -> None:
    watchdog = Watchdog(abandon_after=0.3)
    watchdog.start()
    released = threading.Event()

    def stubborn(job: Job) -> None:
        while not released.is_set():
            with contextlib.suppress(JobTimeout):
                time.sleep(0.005)

    try:
        threading.Timer(2, released.set).start()
        outcome = run_in_thread(watchdog, Job(name="stubborn"), 0.1, stubborn)
        assert watchdog.stuck == 0, "its thread returned: no longer stuck"
    finally:
        watchdog.stop()
    control = outcome["control"]
    assert outcome["abandoned"] and isinstance(control, RunControl) and control.abandoned
    assert outcome["error"] is None and outcome["after"] == "clean"


def test_a_checkin_gives_the_whole_limit_again() -> None:
    watchdog = Watchdog()
    watchdog.start()
    try:
        job = Job(name="checks_in")
        holder: list[RunControl] = []

        def body(job: Job) -> None:
            control = wait_until(lambda: holder and holder[0], timeout=5)
            for _ in range(8):
                time.sleep(0.1)
                watchdog.extend(control)

        def work() -> object:
            control = watchdog.watch(job, 0.3, ThreadInterrupter(threading.get_ident()), lambda c: None)
            holder.append(control)
            return watchdog.run(control, lambda: body(job))

        result: list[object] = []
        thread = threading.Thread(target=lambda: result.append(work()))
        thread.start()
        thread.join(10)
    finally:
        watchdog.stop()
    assert result == [None] and not job.cancelled


def test_the_lease_outlasts_the_limit_and_the_abandon_grace() -> None:
    assert lease_seconds(0) == 0
    assert lease_seconds(30) > 30 + 5
