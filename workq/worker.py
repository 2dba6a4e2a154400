"""One worker thread: runs the jobs its pool's dispatch loop hands it, one at a time, each through the middleware
chain under the pool's watchdog, and hands back how each ended (the loop files it with its next round trip).

The thread never talks to Redis for a job itself, except to extend a lease at a checkin.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import cast

from workq.dispatch_loop import Started
from workq.dispatcher import Dispatcher
from workq.errors import JobTimeout
from workq.middleware import JobChain
from workq.pool_context import WorkerContext
from workq.run import Outcome, Run
from workq.time_limits import CANCELLED, RunControl

logger = logging.getLogger("workq")

Ending = Callable[["Worker", Started, BaseException | None, bool], object]
"""Where a run's end goes: (the worker, its run, what it ended with, whether it was filed already)."""


class Worker:
    """Runs the jobs of sync handlers one at a time until it is closed; the job in hand is always finished first.
    `offer()` hands it its next job; `close()` ends it after the job in hand, returning a job offered but not
    started. It owns its runs for the pool's watchdog (checkins, abandoned runs)."""

    def __init__(self, worker_id: str, context: WorkerContext, dispatcher: Dispatcher, ending: Ending) -> None:
        self.worker_id = worker_id
        self._context = context
        self._dispatcher = dispatcher
        """Over the pool's shared client: lease extensions, and filing a run the watchdog abandoned."""
        self._ending = ending
        self._handoff = threading.Condition()
        self._next: Started | None = None
        self._closed = False

    def offer(self, started: Started) -> bool:
        """Give the worker its next job (it is idle); False once it is closed."""
        with self._handoff:
            if self._closed:
                return False
            self._next = started
            self._handoff.notify()
            return True

    def close(self) -> Started | None:
        """No more jobs: the thread ends after the job in hand. Returns the job offered and not started, if any."""
        with self._handoff:
            self._closed = True
            unstarted, self._next = self._next, None
            self._handoff.notify()
            return unstarted

    def run(self) -> None:
        while (started := self._take()) is not None:
            try:
                outcome, filed_as = self.execute(started)
            except Exception as exc:  # outside the chain (which cannot raise here): fail the run, keep the thread
                logger.exception("worker %s: unexpected error running job %s", self.worker_id, started.job.id)
                outcome, filed_as = exc, None
            self._ending(self, started, outcome, filed_as is not None)

    def _take(self) -> Started | None:
        with self._handoff:
            self._handoff.wait_for(lambda: self._next is not None or self._closed)
            started, self._next = self._next, None
            return started

    def execute(self, started: Started) -> tuple[BaseException | None, Outcome | None]:
        """Run the chain under the pool's watchdog (time limit, cancels). Returns what the run ended with (None: it
        returned) and, when the watchdog abandoned the run meanwhile and had it filed by `on_abandoned` (see
        workq.time_limits), where it was filed."""
        run, job = started.run, started.job
        watchdog = self._context.watchdog
        control = watchdog.watch(job, run.registration.options.timeout, self, run)
        job._checkin_hook = control
        error = watchdog.run(control, cast(JobChain, run.registration.chain))
        if control.abandoned:
            logger.warning("job %s %s returned after it was abandoned: this late outcome is dropped", job.name, job.id)
            return error, "dead" if control.reason == CANCELLED else "retry"
        return control.outcome(error), None

    def on_abandoned(self, control: RunControl) -> None:
        """On the watchdog's abandoning thread: file the run (this worker's thread is stuck in the handler)."""
        run, job = cast(Run, control.run), control.job
        ack, _ = self._dispatcher.ending(run, job, control.outcome(None))
        self._dispatcher.acknowledge(run, ack)

    def on_checkin(self, control: RunControl, message: str) -> None:
        """`job.checkin()`: record progress; give the run its whole time limit again, and push its lease as far —
        only while this run still holds the lease. A run that was stopped, or whose lease another run took over,
        is told so; a checkin of a run that ended changes nothing."""
        job = control.job
        if not control.admit_checkin():
            return
        self._context.observer.checkin(self.worker_id, job, message)
        if not self._dispatcher.extend_lease(cast(Run, control.run), job):
            raise JobTimeout(f"job {job.id}: its lease expired (this pool stalled); it runs again elsewhere")
        self._context.watchdog.extend(control)
