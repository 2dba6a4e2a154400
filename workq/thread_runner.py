"""Runs the jobs of sync handlers on `concurrency` worker threads, fed by one dispatch loop.

The worker threads never fetch: the dispatch loop (`workq.dispatch_loop`, the same one that feeds the event loop)
fetches for every idle thread at once and files the runs that ended, in one round trip, then puts the new jobs on
one queue that the idle threads take them from. Jobs are fetched only for idle threads (a thread is idle again
before its run's seat is given back): none waits in memory behind a running one. At `stop(grace)`, a job no thread
has taken goes straight back to its queue; runs still going after the grace period are handed back too.
"""

from __future__ import annotations

import queue
import secrets
import threading
import time

from workq.dispatch_loop import DispatchLoop, Inbox, Started
from workq.dispatcher import Dispatcher
from workq.pool_context import WorkerContext
from workq.priority_sampler import PrioritySampler
from workq.registration import Registration
from workq.run import Finished
from workq.worker import Worker


class ThreadRunner:
    """The thread executor of one started pool. `start()`; `stop_fetching()` when the pool stops, then `join()`,
    `abandon()` if threads outlived the grace, then `close()`. Or, with no thread started, `work_one()`."""

    def __init__(
        self, context: WorkerContext, order: PrioritySampler[Registration], inbox: Inbox, concurrency: int
    ) -> None:
        self._context = context
        self._order = order
        self._runs = Dispatcher("thread runs", context, dedicated=False)
        self._jobs: queue.SimpleQueue[Started | None] = queue.SimpleQueue()
        """Jobs handed to the worker threads and not taken yet; a None for each thread once the pool stops."""
        self._closed = False
        self._closing = threading.Lock()
        """Orders `_launch` and `stop_fetching`: no job goes on `_jobs` after the threads were told to end."""
        self._workers = [
            Worker(secrets.token_hex(12), context, self._runs, self._jobs, self._end) for _ in range(concurrency)
        ]
        self.worker_ids = [worker.worker_id for worker in self._workers]
        self.dispatch: DispatchLoop[Started] = DispatchLoop(
            "thread", context, order=order, inbox=inbox, seats=concurrency, make=Started, launch=self._launch
        )
        """Fetches for the idle threads and files their runs."""
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for index, worker in enumerate(self._workers):
            thread = threading.Thread(target=worker.run, name=f"workq-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.dispatch.start()

    def _launch(self, started: list[Started]) -> list[Started]:
        """On a dispatch thread: the new jobs to the idle workers (there is one per seat); returns them all refused
        once the pool is stopping."""
        with self._closing:
            if self._closed:
                return started
            for one in started:
                self._jobs.put(one)
        return []

    def _end(self, started: Started, outcome: BaseException | None, filed: bool) -> None:
        """On the worker's thread, as its run ends (the worker is idle again): the run goes to be filed."""
        self.dispatch.end(started, outcome, filed)

    # --- stopping ------------------------------------------------------------------------------------------

    def stop_fetching(self) -> None:
        """The pool is stopping (its `stopping` event is set): no more jobs; those no worker has taken go back to
        their queues at once, and each worker thread ends after its job in hand."""
        unstarted: list[Started] = []
        with self._closing:
            self._closed = True
            while True:
                try:
                    one = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if one is not None:
                    unstarted.append(one)
            for _ in self._workers:
                self._jobs.put(None)
        self.dispatch.hand_back(unstarted, release=True)
        self.dispatch.stop_fetching()

    def join(self, timeout: float | None) -> bool:
        """Wait for the worker threads to end their jobs in hand; False if some still run after `timeout` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def abandon(self) -> int:
        """Hand the jobs still running back to their queues (their handlers outran the stop grace period; the
        daemon threads die with the process). Safe against a handler finishing at the same moment: ack.lua files
        whichever comes first, once."""
        stragglers = self.dispatch.running()
        self.dispatch.hand_back(stragglers, release=False)
        for one in stragglers:
            if one.slot:  # else taken by a worker that has not begun it (ends with the process)
                self._context.observer.done(one.slot)
        return len(stragglers)

    def close(self, timeout: float | None = None) -> None:
        """After `join` or `abandon`: file what is left to acknowledge, then end the dispatch threads."""
        self.dispatch.close(timeout)

    # --- driven step by step from the calling thread (workq.testing) ---------------------------------------

    def work_one(self) -> Finished | None:
        """Fetch one job and run it to its acknowledgement in the calling thread; None when none can be fetched."""
        context, dispatcher, worker = self._context, self._runs, self._workers[0]
        with context.in_flight:
            runs = dispatcher.exchange([], self._order, 1)
            if not runs:
                return None
            run = runs[0]
            job = dispatcher.prepare(run)
            if isinstance(job, Finished):  # not a job: filed dead already
                return job
            context.observer.started(worker.worker_id, job)
            try:
                outcome, filed_as = worker.execute(Started(run, job, worker.worker_id))
            finally:
                context.observer.done(worker.worker_id)
            if filed_as is not None:
                return Finished(job, filed_as, outcome)
            ack, finished = dispatcher.ending(run, job, outcome)
            dispatcher.acknowledge(run, ack)
            return finished
