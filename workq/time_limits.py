"""Time limits and cancels of running jobs: one watchdog thread per pool interrupts a run that passes its `timeout`
or whose cancel arrived, and abandons one that has still not returned `ABANDON_AFTER` seconds later.

A run is interrupted once: a thread worker's by an exception raised in its thread (`JobTimeout` or `Cancelled`, with
CPython's `PyThreadState_SetAsyncExc`: a thread inside a C call — `time.sleep`, a blocking socket read — sees it only
when that call returns), an async run's by cancelling its task (`Interrupt`). Whatever the handler then does —
re-raise, swallow it, raise something else, return — the run ends as timed out (a failure: retry, then dead) or
cancelled (dead). A run that does not return at all (a C call that never gives control back, a handler that swallows
the exception and carries on, an `async def` that blocks its event loop) is abandoned: its owner files its outcome,
and the run keeps its slot until it returns, when its result is dropped.

A run without a time limit costs one `RunControl` and a dict entry: no lock, no wake-up of the watchdog thread,
which only tracks runs with a deadline and runs already interrupted.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from workq.errors import Cancelled, JobTimeout
from workq.job import Job

if TYPE_CHECKING:
    from workq.run import Run

logger = logging.getLogger("workq")

ABANDON_AFTER = 5.0
"""Seconds an interrupted run has to return before it is abandoned (its outcome filed without it)."""
LEASE_MARGIN = 5.0
"""Seconds a run's lease outlasts its time limit plus `ABANDON_AFTER`: a live pool always files the outcome of its
own timed-out run before the lease could give the job to another worker (never two runs at once)."""

TIMED_OUT = "timed out"
CANCELLED = "cancelled"
_RAISED = {TIMED_OUT: JobTimeout, CANCELLED: Cancelled}

Interrupt = Callable[[type[BaseException] | None], object]
"""Delivers an interrupt to a run (`JobTimeout` or `Cancelled`), or forgets one not delivered yet (None). Called
under the watchdog's lock: it must not run Python code that could wait for it."""


def lease_seconds(timeout: float) -> float:
    """How long the lease of a run with time limit `timeout` lasts (0: no time limit, no lease)."""
    return timeout + ABANDON_AFTER + LEASE_MARGIN if timeout else 0


class RunOwner(Protocol):
    """Who runs the watched jobs (a worker thread): told of checkins, and asked to file a run it abandoned."""

    def on_checkin(self, control: RunControl, message: str) -> None: ...

    def on_abandoned(self, control: RunControl) -> object:
        """On a thread of its own: file the abandoned run's outcome (the owner's thread is stuck in the handler)."""


class RunControl:
    """One watched run: its time limit, and why and when it was stopped. It is the job's checkin hook. Read by the
    owner; stopped by the watchdog under its lock."""

    __slots__ = (
        "abandoned",
        "deadline",
        "finished",
        "interrupt",
        "interrupted_at",
        "job",
        "limit",
        "looked_at",
        "owner",
        "reason",
        "run",
    )

    def __init__(self, job: Job, limit: float, owner: RunOwner, run: Run | None, interrupt: Interrupt) -> None:
        self.job = job
        self.limit = limit
        self.deadline = math.inf
        self.owner = owner
        self.run = run
        self.interrupt = interrupt
        self.reason: str | None = None
        """`TIMED_OUT` or `CANCELLED` once the run was stopped (a cancel after a time-out turns it into a cancel)."""
        self.interrupted_at = math.inf
        self.looked_at = False
        """Set by the watchdog (under its lock) before it reads `finished` to stop the run: see `Watchdog.finish`."""
        self.finished = False
        self.abandoned = False

    def __call__(self, message: str) -> None:
        """`job.checkin(message)`."""
        self.owner.on_checkin(self, message)

    def admit_checkin(self) -> bool:
        """At a checkin: False (logged) if the run ended already; raises if it was stopped and carried on."""
        if self.finished:
            logger.warning("job %s %s checked in after its run ended: ignored", self.job.name, self.job.id)
            return False
        self.raise_if_stopped()
        return True

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
        if raised is not None and not isinstance(raised, (JobTimeout, Cancelled, asyncio.CancelledError)):
            message += f"; the handler then raised {type(raised).__name__}: {raised}"
        return _RAISED[self.reason](message)


class Watchdog:
    """Watches every run of one pool, on its worker threads and its event loop. `watch()` as a run starts, `run()`
    to call it (or `begin()` and `finish()` around it), `extend()` at a checkin, `cancel()` by job id."""

    def __init__(self, *, abandon_after: float | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._abandon_after = ABANDON_AFTER if abandon_after is None else abandon_after
        self._monotonic = monotonic
        self._lock = threading.Lock()  # a C-level lock: `finish()` must not run Python code while taking it
        self._changed = threading.Condition(self._lock)
        self._runs: dict[int, RunControl] = {}
        """Every run, by the id of its control: each run adds and removes its own entry (atomic under the GIL, no
        lock); others only copy it."""
        self._watched: set[RunControl] = set()
        """Under the lock: the runs the watchdog thread tracks (a deadline, or interrupted and not yet returned)."""
        self._wake_at = math.inf
        self._stuck: set[RunControl] = set()
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
        self, job: Job, limit: float, owner: RunOwner, run: Run | None = None, interrupt: Interrupt | None = None
    ) -> RunControl:
        """The control of a run of `job` about to start, with time limit `limit` seconds (0: none; it can still be
        cancelled), interrupted by `interrupt` (by default: an exception raised in the calling thread); watched
        once `run()` or `begin()` calls it. It is the job's checkin hook."""
        if interrupt is None:
            interrupt = functools.partial(_raise_in, threading.get_ident())
        return RunControl(job, limit, owner, run, interrupt)

    def run(self, control: RunControl, chain: Callable[[Job], object]) -> BaseException | None:
        """Watch the run, call `chain(job)` and stop watching; returns what it raised (None if it returned). An
        interrupt on its way as the call returned is caught here and counts as the run's outcome: the watchdog
        decided first. (Watched only inside here: no interrupt can land in the caller's code before or after.)"""
        outcome: BaseException | None = None
        try:
            self.begin(control)
            try:
                chain(control.job)
            except BaseException as exc:
                outcome = exc
            self.finish(control)
        except (JobTimeout, Cancelled) as late:
            self.finish(control)
            outcome = outcome or late
        return outcome

    def begin(self, control: RunControl) -> None:
        """The run starts: watched from now (its time limit counts from here)."""
        self._runs[id(control)] = control
        if control.limit:
            with self._changed:
                control.deadline = self._monotonic() + control.limit
                self._watched.add(control)
                if control.deadline < self._wake_at:
                    self._changed.notify()

    def finish(self, control: RunControl) -> None:
        """On the run's thread, as it returns (again if an interrupt landed in here: it must be idempotent).

        No interrupt may reach the thread after this: the watchdog sets `looked_at`, then reads `finished` and
        interrupts only a run not finished, all under its lock; here `finished` is set, then `looked_at` read.
        Whichever comes first, either the watchdog sees `finished` and leaves the run alone, or this sees
        `looked_at` and waits for the lock, then discards any interrupt not yet delivered. (The GIL orders the
        two threads' reads and writes.) A run without a limit that nobody stopped takes no lock."""
        control.finished = True
        self._runs.pop(id(control), None)
        if control.looked_at or control.limit:
            with self._lock:
                self._watched.discard(control)
                self._stuck.discard(control)
                if control.reason is not None:
                    control.interrupt(None)  # discards an interrupt not yet delivered

    def extend(self, control: RunControl) -> None:
        """A checkin: the run gets its whole time limit again from now (not once it was stopped)."""
        with self._changed:
            if control.limit and control.reason is None:
                control.deadline = self._monotonic() + control.limit

    def cancel(self, job_id: str) -> bool:
        """Interrupt the runs of `job_id` with `Cancelled`; True if this pool runs it."""
        found = False
        with self._changed:
            for control in list(self._runs.values()):
                if control.job.id == job_id and not control.abandoned and self._stop(control, CANCELLED):
                    found = True
        return found

    def cancel_run(self, control: RunControl) -> None:
        """Interrupt this run with `Cancelled` (a cancel that arrived as it began)."""
        with self._changed:
            if not control.abandoned:
                self._stop(control, CANCELLED)

    @property
    def stuck(self) -> int:
        """Abandoned runs that have not returned yet (each holds a worker thread or an async slot)."""
        return len(self._stuck)

    def running_job_ids(self) -> set[str]:
        return {control.job.id for control in list(self._runs.values()) if not (control.abandoned or control.finished)}

    def _stop(self, control: RunControl, reason: str) -> bool:
        """Under the lock: mark the run stopped and interrupt it, once (a second interrupt could land after the
        first was handled). False if it finished meanwhile (see `finish`)."""
        control.looked_at = True
        if control.finished:
            return False
        first = control.reason is None
        if control.reason != CANCELLED:
            control.reason = reason
        control.job._cancelled = True
        if first:
            control.interrupted_at = self._monotonic()
            logger.warning("job %s %s %s: interrupting it", control.job.name, control.job.id, control.describe())
            control.interrupt(_RAISED[reason])
            self._watched.add(control)  # for its abandon time
            self._changed.notify()
        return True

    def _loop(self) -> None:
        with self._changed:
            while not self._stopping:
                now = self._monotonic()
                wake_at = math.inf
                for control in list(self._watched):
                    if control.reason is None and control.deadline <= now:
                        self._stop(control, TIMED_OUT)
                    if control.finished:
                        self._watched.discard(control)
                    elif control.reason is None:
                        wake_at = min(wake_at, control.deadline)
                    elif control.interrupted_at + self._abandon_after <= now:
                        self._abandon(control)
                    else:
                        wake_at = min(wake_at, control.interrupted_at + self._abandon_after)
                self._wake_at = wake_at
                self._changed.wait(None if wake_at == math.inf else max(0.0, wake_at - now))

    def _abandon(self, control: RunControl) -> None:
        """The run did not return in time: stop watching it and have its owner file its outcome on a thread of its
        own (Redis may be slow; other runs' limits must not wait)."""
        control.abandoned = True
        self._stuck.add(control)
        self._watched.discard(control)
        logger.error(
            "job %s %s did not return within %g s of being interrupted (a C call, or it caught the exception and "
            "carried on, or blocked its event loop): abandoned and counted as %s; its slot stays busy until it returns",
            control.job.name,
            control.job.id,
            self._abandon_after,
            control.reason,
        )
        threading.Thread(target=control.owner.on_abandoned, args=(control,), name="workq-abandon", daemon=True).start()


def _raise_in(thread_id: int, exc_type: type[BaseException] | None) -> None:
    """Raise `exc_type` in the thread at its next Python bytecode (None: forget one not yet raised)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), None if exc_type is None else ctypes.py_object(exc_type)
    )
