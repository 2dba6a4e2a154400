"""Time limits and cancels of running jobs: one watchdog thread per pool interrupts a run that passes its `timeout`
or whose cancel arrived, and abandons one that has still not returned `ABANDON_AFTER` seconds later.

A run is interrupted once, by an exception raised where it runs (`JobTimeout` or `Cancelled`; see `Interrupter`).
Whatever the handler then does — re-raise, swallow it, raise something else, return — the run ends as timed out
(a failure: retry, then dead) or cancelled (dead). A run that does not return at all (a C call that never gives
control back, a handler that swallows the exception and carries on) is abandoned: the watchdog files its outcome,
and the thread keeps its slot until it returns, when its result is dropped.
"""

from __future__ import annotations

import ctypes
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

from workq.errors import Cancelled, JobTimeout
from workq.job import Job

logger = logging.getLogger("workq")

ABANDON_AFTER = 5.0
"""Seconds an interrupted run has to return before it is abandoned (its outcome filed without it)."""
LEASE_MARGIN = 5.0
"""Seconds a run's lease outlasts its time limit plus `ABANDON_AFTER`: a live pool always files the outcome of its
own timed-out run before the lease could give the job to another worker (never two runs at once)."""
MAX_SLEEP = 1.0

TIMED_OUT = "timed out"
CANCELLED = "cancelled"
_RAISED = {TIMED_OUT: JobTimeout, CANCELLED: Cancelled}


def lease_seconds(timeout: float) -> float:
    """How long the lease of a run with time limit `timeout` lasts (0: no time limit, no lease)."""
    return timeout + ABANDON_AFTER + LEASE_MARGIN if timeout else 0


class Interrupter(Protocol):
    """How the watchdog stops one run: a thread gets an exception raised in it; an asyncio task is cancelled."""

    def interrupt(self, exc_type: type[BaseException]) -> None: ...

    def discard_pending(self) -> None:
        """Called from the run's own thread once it has finished: an interrupt not yet delivered must never land
        in the worker's code after the run."""


class ThreadInterrupter:
    """Raises an exception in a thread at its next Python bytecode (CPython's `PyThreadState_SetAsyncExc`). A thread
    inside a C call — `time.sleep`, a blocking socket read, a C extension — sees it only when that call returns."""

    def __init__(self, thread_id: int) -> None:
        self._thread_id = ctypes.c_ulong(thread_id)

    def interrupt(self, exc_type: type[BaseException]) -> None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(self._thread_id, ctypes.py_object(exc_type))

    def discard_pending(self) -> None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(self._thread_id, None)


class RunControl:
    """One watched run: its time limit, and why and when it was stopped. Read by the worker; changed by the watchdog
    under its lock."""

    def __init__(
        self, job: Job, limit: float, interrupter: Interrupter, on_abandon: Callable[[RunControl], object], now: float
    ) -> None:
        self.job = job
        self.limit = limit
        self.deadline = now + limit if limit else math.inf
        self.interrupter = interrupter
        self.on_abandon = on_abandon
        self.reason: str | None = None
        """`TIMED_OUT` or `CANCELLED` once the run was stopped (a cancel after a time-out turns it into a cancel)."""
        self.interrupted_at = math.inf
        self.finished = False
        self.abandoned = False

    def raise_if_stopped(self) -> None:
        """At a checkin: a run that was stopped and carried on is told again, synchronously."""
        if self.reason is not None:
            raise _RAISED[self.reason](self.describe())

    def describe(self) -> str:
        """The `err` of the run's outcome: starts with "cancelled", or contains "timed out"."""
        if self.reason == CANCELLED:
            return "cancelled while running (workq.Client.cancel)"
        return f"timed out: the run passed its {self.limit:g} s time limit"

    def outcome(self, raised: BaseException | None) -> BaseException | None:
        """What the run ends as: what it raised (None: returned) — or, once it was stopped, `JobTimeout` or
        `Cancelled` whatever it did (saying what it raised instead, if anything)."""
        if self.reason is None:
            return raised
        message = self.describe()
        if raised is not None and not isinstance(raised, (JobTimeout, Cancelled)):
            message += f"; the handler then raised {type(raised).__name__}: {raised}"
        return _RAISED[self.reason](message)


class Watchdog:
    """Watches every run of one pool. `watch()` as a run starts, `run()` to call it, `extend()` at a checkin."""

    def __init__(self, *, abandon_after: float | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._abandon_after = ABANDON_AFTER if abandon_after is None else abandon_after
        self._monotonic = monotonic
        self._lock = threading.Lock()  # a C-level lock: `finish()` must not run Python code while taking it
        self._changed = threading.Condition(self._lock)
        self._runs: set[RunControl] = set()
        self._stuck = 0
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="workq-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify()
        if self._thread is not None:
            self._thread.join()

    def watch(
        self, job: Job, limit: float, interrupter: Interrupter, on_abandon: Callable[[RunControl], object]
    ) -> RunControl:
        """Start watching a run of `job` with time limit `limit` seconds (0: none; it can still be cancelled)."""
        control = RunControl(job, limit, interrupter, on_abandon, self._monotonic())
        with self._changed:
            self._runs.add(control)
            if limit:
                self._changed.notify()
        return control

    def run(self, control: RunControl, call: Callable[[], object]) -> BaseException | None:
        """Call the run and stop watching it; returns what it raised (None if it returned). An interrupt that was
        on its way as the call returned is caught here and counts as the run's outcome: the watchdog decided first."""
        outcome: BaseException | None = None
        try:
            try:
                call()
            except BaseException as exc:
                outcome = exc
            self._finish(control)
        except (JobTimeout, Cancelled) as late:
            self._finish(control)
            outcome = outcome or late
        return outcome

    def _finish(self, control: RunControl) -> None:
        with self._lock:
            if control.abandoned and not control.finished:
                self._stuck -= 1
            control.finished = True
            self._runs.discard(control)
            if control.reason is not None:
                control.interrupter.discard_pending()

    def extend(self, control: RunControl) -> None:
        """A checkin: the run gets its whole time limit again from now (not once it was stopped)."""
        with self._changed:
            if control.limit and control.reason is None:
                control.deadline = self._monotonic() + control.limit

    def cancel(self, job_id: str) -> bool:
        """Interrupt the runs of `job_id` with `Cancelled`; True if this pool runs it."""
        found = False
        with self._changed:
            for control in self._runs:
                if control.job.id == job_id and not control.abandoned:
                    found = True
                    self._stop(control, CANCELLED)
            self._changed.notify()
        return found

    @property
    def stuck(self) -> int:
        """Abandoned runs whose thread has not returned yet (each holds a worker thread)."""
        return self._stuck

    def running_job_ids(self) -> set[str]:
        with self._lock:
            return {control.job.id for control in self._runs if not control.abandoned}

    def _stop(self, control: RunControl, reason: str) -> None:
        """Mark the run stopped and interrupt it, once: a second interrupt could land after the first was handled."""
        first = control.reason is None
        if control.reason != CANCELLED:
            control.reason = reason
        control.job._cancelled = True
        if first:
            control.interrupted_at = self._monotonic()
            logger.warning("job %s %s %s: interrupting it", control.job.name, control.job.id, control.describe())
            control.interrupter.interrupt(_RAISED[reason])

    def _loop(self) -> None:
        with self._changed:
            while not self._stopping:
                now = self._monotonic()
                wake_at = now + MAX_SLEEP
                for control in list(self._runs):
                    if control.reason is None and control.deadline <= now:
                        self._stop(control, TIMED_OUT)
                    if control.reason is None:
                        wake_at = min(wake_at, control.deadline)
                    elif control.interrupted_at + self._abandon_after <= now:
                        self._abandon(control)
                    else:
                        wake_at = min(wake_at, control.interrupted_at + self._abandon_after)
                self._changed.wait(max(0.0, wake_at - now))

    def _abandon(self, control: RunControl) -> None:
        """The run did not return in time: stop watching it and file its outcome on a thread of its own (Redis may
        be slow; other runs' limits must not wait)."""
        control.abandoned = True
        self._stuck += 1
        self._runs.discard(control)
        logger.error(
            "job %s %s did not return within %g s of being interrupted (a C call, or it caught the exception and "
            "carried on): abandoned and counted as %s; its thread stays busy until it returns",
            control.job.name,
            control.job.id,
            self._abandon_after,
            control.reason,
        )
        threading.Thread(target=control.on_abandon, args=(control,), name="workq-abandon", daemon=True).start()
