"""One worker thread: fetch → middleware chain → ack, retry, reschedule or dead; never dies on a bad job."""

from __future__ import annotations

import logging
import threading
from typing import cast

from workq.dispatcher import IDLE_POLL, Dispatcher
from workq.errors import JobTimeout
from workq.job import Job
from workq.middleware import JobChain
from workq.pool_context import FetchOrder, WorkerContext
from workq.run import Finished, Run
from workq.time_limits import CANCELLED, RunControl, ThreadInterrupter

logger = logging.getLogger("workq")


class Worker:
    """Runs jobs of sync handlers one at a time until the pool starts stopping; the job in hand is always
    finished first."""

    def __init__(self, worker_id: str, context: WorkerContext, order: FetchOrder) -> None:
        self.worker_id = worker_id
        self._context = context
        self._order = order
        self._current: Run | None = None
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
                with context.in_flight:
                    fetched = self._dispatcher.fetch_next(self._order, woken)
                    if fetched is not None:
                        self._process(fetched)
            except Exception as exc:
                self._dispatcher.note_fault(exc)
            woken = fetched is None and self._order.wakeup.wait(IDLE_POLL)

    @property
    def fetching(self) -> bool:
        """True while a fetch call is on its way to or from Redis."""
        return self._dispatcher.fetching

    def work_one(self) -> Finished | None:
        """Fetch one job and run it to its acknowledgement in the calling thread; None when none can be fetched.

        The steps of `_loop` without its waiting, for `workq.testing`'s drain.
        """
        fetched = self._dispatcher.fetch_next(self._order, woken=False)
        return None if fetched is None else self._process(fetched)

    def _process(self, run: Run) -> Finished:
        self._current = run
        try:
            job = self._dispatcher.begin(run, self.worker_id)
            return job if isinstance(job, Finished) else self._run_job(run, job)
        finally:
            self._current = None
            self._context.observer.done(self.worker_id)

    def _run_job(self, run: Run, job: Job) -> Finished:
        """Run the chain under the pool's watchdog (time limit, cancels) and file its outcome — unless the watchdog
        abandoned the run meanwhile and filed it (see workq.time_limits)."""
        watchdog = self._context.watchdog
        control = watchdog.watch(
            job,
            run.registration.options.timeout,
            ThreadInterrupter(threading.get_ident()),
            lambda abandoned: self._file_abandoned(run, job, abandoned),
        )
        job._checkin_hook = lambda message: self._checkin(job, run, control, message)
        error = watchdog.run(control, lambda: cast(JobChain, run.registration.chain)(job))
        if control.abandoned:
            logger.warning("job %s %s returned after it was abandoned: this late outcome is dropped", job.name, job.id)
            return Finished(job, "dead" if control.reason == CANCELLED else "retry", error)
        return self._dispatcher.finish(run, job, control.outcome(error))

    def _file_abandoned(self, run: Run, job: Job, control: RunControl) -> None:
        """On the watchdog's abandoning thread: file the run over a connection of its own (this worker's thread
        is stuck in the handler)."""
        dispatcher = Dispatcher(f"abandoned run of job {job.id}", self._context)
        try:
            dispatcher.finish(run, job, control.outcome(None))
        finally:
            dispatcher.close()

    def _checkin(self, job: Job, run: Run, control: RunControl, message: str) -> None:
        """Record progress; give the run its whole time limit again, and push its lease as far — only while this
        run still holds the lease. A run that was stopped, or whose lease another run took over, is told so."""
        control.raise_if_stopped()
        self._context.observer.checkin(self.worker_id, job, message)
        if not self._dispatcher.extend_lease(run, job):
            raise JobTimeout(f"job {job.id}: its lease expired (this pool stalled); it runs again elsewhere")
        self._context.watchdog.extend(control)

    @property
    def held_payload(self) -> bytes | None:
        """The bytes of the job this worker is running, as they sit in the in-progress list."""
        run = self._current
        return None if run is None else run.payload

    @property
    def held_lease(self) -> bytes:
        """The lease of the run this worker is in (b'' when none, or the job has no time-out)."""
        run = self._current
        return b"" if run is None else run.lease

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
