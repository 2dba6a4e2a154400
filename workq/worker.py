"""One worker thread: fetch → middleware chain → ack, retry, reschedule or dead; never dies on a bad job."""

from __future__ import annotations

import logging
from typing import cast

from workq.dispatcher import IDLE_POLL, Dispatcher
from workq.job import Job
from workq.middleware import JobChain
from workq.pool_context import FetchOrder, WorkerContext
from workq.run import Finished, Run

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
        job._checkin_hook = lambda message: self._checkin(job, run, message)
        error: BaseException | None = None
        try:
            cast(JobChain, run.registration.chain)(job)
        except BaseException as exc:
            error = exc
        return self._dispatcher.finish(run, job, error)

    def _checkin(self, job: Job, run: Run, message: str) -> None:
        """Record progress; for a job with a time-out, also push its deadline `timeout` seconds ahead."""
        self._context.observer.checkin(self.worker_id, job, message)
        self._dispatcher.extend_lease(run, job)

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
