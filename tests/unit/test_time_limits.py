"""The watchdog on its own: a run past its limit is interrupted once in its own thread, a checkin pushes the limit,
a cancel interrupts, a run that does not return is abandoned, and nothing lands in the worker after the run."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections import Counter

from workq import Cancelled, Job, JobTimeout
from workq.time_limits import CANCELLED, TIMED_OUT, RunControl, Watchdog, lease_seconds


class Owner:
    """A worker's part: counts checkins (extending the limit as a worker does) and notes an abandon."""

    def __init__(self, watchdog: Watchdog) -> None:
        self.watchdog = watchdog
        self.abandoned = threading.Event()
        self.checkins: list[str] = []

    def on_checkin(self, control: RunControl, message: str) -> None:
        control.raise_if_stopped()
        self.checkins.append(message)
        self.watchdog.extend(control)

    def on_abandoned(self, control: RunControl) -> None:
        self.abandoned.set()


def run_in_thread(watchdog: Watchdog, job: Job, limit: float, body: object) -> dict[str, object]:
    """Run `body(job)` under the watchdog on a thread of its own; returns what happened once it ended."""
    outcome: dict[str, object] = {}
    owner = Owner(watchdog)

    def work() -> None:
        control = watchdog.watch(job, limit, owner)
        job._checkin_hook = control
        outcome["control"] = control
        outcome["error"] = watchdog.run(control, body)  # type: ignore[arg-type]
        time.sleep(0.05)  # worker code after the run: nothing may land here
        outcome["after"] = "clean"

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(20)
    outcome["abandoned"] = owner.abandoned.is_set()
    return outcome


def steps(seconds: float) -> object:
    def body(job: Job) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.005)

    return body


def steps_of_python(job: Job) -> None:
    """A few bytecodes, each a point where an interrupt can land."""
    for _ in range(10):
        pass


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

        def body(job: Job) -> None:
            for step in range(8):
                time.sleep(0.1)
                job.checkin(f"step {step}")

        outcome = run_in_thread(watchdog, job, 0.3, body)
    finally:
        watchdog.stop()
    assert outcome["error"] is None and not job.cancelled


def test_the_lease_outlasts_the_limit_and_the_abandon_grace() -> None:
    assert lease_seconds(0) == 0
    assert lease_seconds(30) > 30 + 5


def test_a_cancel_racing_the_end_of_runs_never_lands_after_a_run_and_decides_its_outcome_once() -> None:
    """Runs without a time limit take no lock: a cancel arriving as one returns either interrupts it (the run
    ends cancelled) or leaves it alone (it ends as it returned), and never raises in the worker's code after it."""
    watchdog = Watchdog(abandon_after=30)
    watchdog.start()
    owner = Owner(watchdog)
    job = Job(name="short")
    stop = threading.Event()
    endings: Counter[tuple[str, str | None]] = Counter()
    escaped: list[BaseException] = []

    def runs() -> None:
        deadline = time.monotonic() + 20
        try:
            while endings.total() < 3000 or (endings["Cancelled", CANCELLED] < 20 and time.monotonic() < deadline):
                job._cancelled = False
                control = watchdog.watch(job, 0, owner)
                error = watchdog.run(control, steps_of_python)
                endings[type(control.outcome(error)).__name__, control.reason] += 1
                steps_of_python(job)  # worker code after the run: nothing may land here
        except BaseException as exc:
            escaped.append(exc)

    def cancels() -> None:
        while not stop.is_set():
            watchdog.cancel(job.id)

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the two threads take turns every few bytecodes: the race is met often
    try:
        canceller = threading.Thread(target=cancels, daemon=True)
        canceller.start()
        worker = threading.Thread(target=runs)
        worker.start()
        worker.join(60)
    finally:
        sys.setswitchinterval(switch_interval)
        stop.set()
        watchdog.stop()
    canceller.join(10)
    assert escaped == []
    assert set(endings) <= {("NoneType", None), ("Cancelled", CANCELLED)}
    assert endings["Cancelled", CANCELLED] >= 20, "the race was hardly met: the test proves little"
    assert watchdog.running_job_ids() == set()


def test_running_job_ids_lists_the_runs_in_progress_only() -> None:
    watchdog = Watchdog()
    owner = Owner(watchdog)
    seen: list[set[str]] = []
    job = Job(name="listed")
    control = watchdog.watch(job, 0, owner)
    watchdog.run(control, lambda job: seen.append(watchdog.running_job_ids()))
    assert seen == [{job.id}] and watchdog.running_job_ids() == set()
