"""One worker thread: fetch → middleware chain → ack, retry, reschedule or dead; never dies on a bad job.

A run's ack goes to Redis with the fetch of the next job, in one round trip (`Dispatcher.exchange`): the thread asks
for its next job as soon as a run ends, so the ack is not delayed, and a worker that finds nothing has still sent it.
"""

from __future__ import annotations

import logging
from typing import cast

from workq.dispatcher import IDLE_POLL, Dispatcher
from workq.errors import JobTimeout
from workq.job import Job
from workq.middleware import JobChain
from workq.pool_context import FetchOrder, WorkerContext
from workq.run import Ack, Finished, Run
from workq.time_limits import CANCELLED, RunControl

logger = logging.getLogger("workq")


class Worker:
    """Runs jobs of sync handlers one at a time until the pool starts stopping; the job in hand is always
    finished first."""

    def __init__(self, worker_id: str, context: WorkerContext, order: FetchOrder) -> None:
        self.worker_id = worker_id
        self._context = context
        self._order = order
        self._current: Run | None = None
        self._ended: tuple[Run, Ack] | None = None
        """The last run and its ack, until that ack is sent: the job is still in progress (and in flight)."""
        self._dispatcher = Dispatcher(f"worker {worker_id}", context)

    def run(self) -> None:
        try:
            self._loop()
        finally:
            self._dispatcher.close()

    def _loop(self) -> None:
        context = self._context
        woken = False
        while not context.stopping.is_set():
            fetched: Run | None = None
            try:
                fetched = self._ack_and_fetch(woken)
                if fetched is not None:
                    self._run(fetched)
            except Exception as exc:
                self._dispatcher.note_fault(exc)
            woken = fetched is None and self._order.wakeup.wait(IDLE_POLL)
        try:
            self._ack_and_fetch(woken=False, fetch=False)
        except Exception as exc:  # the job stays in progress: the orphan sweeper or the reaper hands it back
            self._dispatcher.note_fault(exc)

    def _ack_and_fetch(self, woken: bool, fetch: bool = True) -> Run | None:
        """Send the last run's ack and fetch the next job, in one round trip. Each fetched job counts as in flight
        until its own ack is sent, so `drain()` cannot miss it."""
        in_flight, ended = self._context.in_flight, self._ended
        if fetch:
            in_flight.add()
        runs: list[Run] = []
        try:
            runs = self._dispatcher.exchange([ended] if ended else [], self._order, int(fetch), woken)
        finally:
            if ended is not None:  # sent (exchange retries an ack through faults), or left for recovery
                self._ended = None
                in_flight.remove()
            if fetch and not runs:
                in_flight.remove()
        return runs[0] if runs else None

    def _run(self, run: Run) -> Finished:
        """Run the job, keeping its ack for the next round trip (a payload that is no job is filed dead at once)."""
        self._current = run
        try:
            job = self._dispatcher.begin(run, self.worker_id)
            return job if isinstance(job, Finished) else self._run_job(run, job)
        finally:
            self._current = None
            self._context.observer.done(self.worker_id)
            if self._ended is None:  # nothing left to acknowledge for this run
                self._context.in_flight.remove()

    def _run_job(self, run: Run, job: Job) -> Finished:
        """Run the chain under the pool's watchdog (time limit, cancels) and keep its ack — unless the watchdog
        abandoned the run meanwhile and had it filed by `on_abandoned` (see workq.time_limits)."""
        watchdog = self._context.watchdog
        control = watchdog.watch(job, run.registration.options.timeout, self, run)
        job._checkin_hook = control
        error = watchdog.run(control, cast(JobChain, run.registration.chain))
        if control.abandoned:
            logger.warning("job %s %s returned after it was abandoned: this late outcome is dropped", job.name, job.id)
            return Finished(job, "dead" if control.reason == CANCELLED else "retry", error)
        ack, finished = self._dispatcher.ending(run, job, control.outcome(error))
        self._ended = (run, ack)
        return finished

    def on_abandoned(self, control: RunControl) -> None:
        """On the watchdog's abandoning thread: file the run over a connection of its own (this worker's thread
        is stuck in the handler)."""
        run, job = cast(Run, control.run), control.job
        dispatcher = Dispatcher(f"abandoned run of job {job.id}", self._context)
        try:
            ack, _ = dispatcher.ending(run, job, control.outcome(None))
            dispatcher.acknowledge(run, ack)
        finally:
            dispatcher.close()

    @property
    def fetching(self) -> bool:
        """True while a fetch call is on its way to or from Redis."""
        return self._dispatcher.fetching

    def work_one(self) -> Finished | None:
        """Fetch one job and run it to its acknowledgement in the calling thread; None when none can be fetched.

        The steps of `_loop` without its waiting, for `workq.testing`'s drain.
        """
        fetched = self._ack_and_fetch(woken=False)
        if fetched is None:
            return None
        finished = self._run(fetched)
        self._ack_and_fetch(woken=False, fetch=False)
        return finished

    def on_checkin(self, control: RunControl, message: str) -> None:
        """`job.checkin()`: record progress; give the run its whole time limit again, and push its lease as far —
        only while this run still holds the lease. A run that was stopped, or whose lease another run took over,
        is told so; a checkin of a run that ended changes nothing."""
        job = control.job
        if control.finished:
            logger.warning("job %s %s checked in after its run ended: ignored", job.name, job.id)
            return
        control.raise_if_stopped()
        self._context.observer.checkin(self.worker_id, job, message)
        if not self._dispatcher.extend_lease(cast(Run, control.run), job):
            raise JobTimeout(f"job {job.id}: its lease expired (this pool stalled); it runs again elsewhere")
        self._context.watchdog.extend(control)

    @property
    def held_payload(self) -> bytes | None:
        """The bytes of the job this worker is running or has yet to acknowledge, as they sit in the in-progress
        list."""
        run = self._held()
        return None if run is None else run.payload

    @property
    def held_lease(self) -> bytes:
        """The lease of the run this worker is in or has yet to acknowledge (b'' when none, or no time-out)."""
        run = self._held()
        return b"" if run is None else run.lease

    def _held(self) -> Run | None:
        ended = self._ended
        return self._current or (None if ended is None else ended[0])

    def abandon(self) -> bool:
        """Put the job this worker is running back on its queue (its handler outran the stop grace period).

        Safe against the handler finishing at the same moment: ack.lua files whichever comes first, once.
        """
        run = self._current
        if run is None:
            return False
        self._dispatcher.acknowledge(run, run.hand_back())
        self._context.observer.done(self.worker_id)
        return True
