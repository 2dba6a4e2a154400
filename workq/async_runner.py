"""Runs the jobs of `async def` handlers on the pool's event loop, at most `async_concurrency` at once.

Three parts, so that the loop never waits on Redis: a feeder thread fetches a job whenever a slot is free (its
own `Dispatcher`, the same fetch as thread workers), the loop runs the chain as a task, and an acker thread files
each outcome (its own `Dispatcher`, the same acknowledgements as thread workers). Each slot has a worker id of its
own, so observations show every async run like a thread worker's job.

Time-outs and cancels cancel the task; the run then ends as `JobTimeout` / `Cancelled` would in a thread. At
`stop(grace)`, tasks still running after the grace period are handed back to their queues and cancelled.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from workq.dispatcher import IDLE_POLL, Dispatcher, FetchOrder, WorkerContext
from workq.errors import Cancelled, JobTimeout
from workq.event_loop import EventLoopThread
from workq.job import Job
from workq.middleware import AsyncJobChain
from workq.run import Run

logger = logging.getLogger("workq")


@dataclass(eq=False)
class AsyncRun:
    """A run on the loop: its slot, its task and, once something interrupts it, why."""

    run: Run
    job: Job
    slot: str
    task: asyncio.Task[None] | None = None
    deadline: float = 0.0
    """`time.monotonic()` after which the task is cancelled as timed out (0: no time limit)."""
    interrupt: BaseException | None = None
    """What the run ends with once its task was cancelled on purpose: JobTimeout, Cancelled."""
    handed_back: bool = False
    released: bool = field(default=False)


class AsyncRunner:
    """The async executor of one started pool. `start()` after the event loop started; `stop_fetching()`, then
    `wait_idle()` / `abandon()`, then `close()`."""

    def __init__(self, context: WorkerContext, order: FetchOrder, loop: EventLoopThread, concurrency: int) -> None:
        self._context = context
        self._order = order
        self._loop = loop
        self.worker_ids = [secrets.token_hex(12) for _ in range(concurrency)]
        self._free_slots: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        for worker_id in self.worker_ids:
            self._free_slots.put(worker_id)
        self._acks: queue.SimpleQueue[Callable[[Dispatcher], None] | None] = queue.SimpleQueue()
        self._running: dict[str, AsyncRun] = {}
        self._idle = threading.Condition()
        self._fetcher = Dispatcher("async feeder", context)
        self._acker = Dispatcher("async acker", context)
        self._feeder_thread = threading.Thread(target=self._feed, name="workq-async-feeder", daemon=True)
        self._acker_thread = threading.Thread(target=self._acknowledge, name="workq-async-acker", daemon=True)

    def start(self) -> None:
        self._acker_thread.start()
        self._feeder_thread.start()

    # --- fetching ------------------------------------------------------------------------------------------

    def _feed(self) -> None:
        context = self._context
        woken = False
        try:
            while not context.stopping.is_set():
                slot = self._free_slots.get()
                if slot is None or context.stopping.is_set():
                    break
                fetched = self._start_one(slot, woken)
                woken = fetched is None and not context.stopping.is_set() and self._order.wakeup.wait(IDLE_POLL)
        finally:
            self._fetcher.close()

    def _start_one(self, slot: str, woken: bool) -> Run | None:
        """Fetch into `slot` and hand the job to the loop; the slot comes back free if nothing started."""
        context = self._context
        context.in_flight.add()
        started = False
        fetched: Run | None = None
        try:
            fetched = self._fetcher.fetch_next(self._order, woken)
            job = None if fetched is None else self._fetcher.begin(fetched, slot)
            if fetched is not None and job is not None:
                self._launch(AsyncRun(fetched, job, slot))
                started = True
        except Exception as exc:
            self._fetcher.note_fault(exc)
        finally:
            if not started:
                context.in_flight.remove()
                self._free_slots.put(slot)
        return fetched

    def _launch(self, async_run: AsyncRun) -> None:
        timeout = async_run.run.registration.options.timeout
        if timeout:
            async_run.deadline = time.monotonic() + timeout
        async_run.job._checkin_hook = lambda message: self._checkin(async_run, message)
        with self._idle:
            self._running[async_run.slot] = async_run
        self._loop.loop.call_soon_threadsafe(self._create_task, async_run)

    # --- on the loop ---------------------------------------------------------------------------------------

    def _create_task(self, async_run: AsyncRun) -> None:
        if async_run.handed_back:  # abandoned before it started
            self._acks.put(lambda dispatcher: self._release(async_run))
            return
        async_run.task = self._loop.loop.create_task(self._execute(async_run), name=f"workq {async_run.job.name}")
        if async_run.deadline:
            self._loop.loop.call_later(async_run.deadline - time.monotonic(), self._check_deadline, async_run)

    async def _execute(self, async_run: AsyncRun) -> None:
        outcome: BaseException | None = None
        try:
            await cast(AsyncJobChain, async_run.run.registration.chain)(async_run.job)
        except BaseException as exc:  # a handler's KeyboardInterrupt/SystemExit hands its job back: see Outcomes
            outcome = exc
        if async_run.interrupt is not None:  # cancelled on purpose, whether or not the handler let it through
            outcome = async_run.interrupt
        self._acks.put(lambda dispatcher: self._finish(dispatcher, async_run, outcome))

    def _check_deadline(self, async_run: AsyncRun) -> None:
        task = async_run.task
        if task is None or task.done() or async_run.interrupt is not None:
            return
        left = async_run.deadline - time.monotonic()
        if left > 0:  # checked in meanwhile
            self._loop.loop.call_later(left, self._check_deadline, async_run)
            return
        timeout = async_run.run.registration.options.timeout
        async_run.interrupt = JobTimeout(f"timed out after {timeout:g} s")
        logger.warning("job %s %s timed out after %g s: cancelling it", async_run.job.name, async_run.job.id, timeout)
        task.cancel()

    def _interrupt(self, async_run: AsyncRun, reason: BaseException) -> None:
        if async_run.interrupt is None:
            async_run.interrupt = reason
        if async_run.task is not None:
            async_run.task.cancel()

    def _checkin(self, async_run: AsyncRun, message: str) -> None:
        """Record progress and push the time limit back; the lease is extended off the loop."""
        self._context.observer.checkin(async_run.slot, async_run.job, message)
        timeout = async_run.run.registration.options.timeout
        if timeout:
            async_run.deadline = time.monotonic() + timeout
        if async_run.run.lease:
            self._acks.put(lambda dispatcher: dispatcher.extend_lease(async_run.run, async_run.job))

    # --- acknowledging -------------------------------------------------------------------------------------

    def _acknowledge(self) -> None:
        try:
            while (work := self._acks.get()) is not None:
                try:
                    work(self._acker)
                except Exception as exc:
                    self._acker.note_fault(exc)
        finally:
            self._acker.close()

    def _finish(self, dispatcher: Dispatcher, async_run: AsyncRun, outcome: BaseException | None) -> None:
        try:
            if not async_run.handed_back:
                dispatcher.finish(async_run.run, async_run.job, outcome)
        finally:
            self._release(async_run)

    def _release(self, async_run: AsyncRun) -> None:
        if async_run.released:
            return
        async_run.released = True
        self._context.observer.done(async_run.slot)
        with self._idle:
            self._running.pop(async_run.slot, None)
            self._idle.notify_all()
        self._context.in_flight.remove()
        self._free_slots.put(async_run.slot)

    # --- control -------------------------------------------------------------------------------------------

    def cancel(self, job_id: str) -> bool:
        """Interrupt the running job `job_id` (`Client.cancel`): it ends as `Cancelled`. False if not running here."""
        return self._interrupt_where(lambda async_run: async_run.job.id == job_id, Cancelled("cancelled"))

    def _interrupt_where(self, matches: Callable[[AsyncRun], bool], reason: BaseException) -> bool:
        with self._idle:
            chosen = [async_run for async_run in self._running.values() if matches(async_run)]
        for async_run in chosen:
            self._loop.loop.call_soon_threadsafe(self._interrupt, async_run, reason)
        return bool(chosen)

    def held_payloads(self) -> Counter[bytes]:
        with self._idle:
            return Counter(async_run.run.payload for async_run in self._running.values())

    @property
    def fetching(self) -> bool:
        return self._fetcher.fetching

    def stop_fetching(self) -> None:
        """The pool is stopping (its `stopping` event is set): wake the feeder if it waits for a slot."""
        self._free_slots.put(None)

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait for the feeder to stop and every run to be acknowledged; False if some still run after `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._feeder_thread.join(timeout)
        with self._idle:
            return self._idle.wait_for(
                lambda: not self._running, None if deadline is None else max(0.0, deadline - time.monotonic())
            )

    def abandon(self) -> int:
        """Hand the jobs still running back to their queues and cancel their tasks (the stop grace ran out)."""
        with self._idle:
            stragglers = [async_run for async_run in self._running.values() if not async_run.handed_back]
        for async_run in stragglers:
            async_run.handed_back = True
            self._acks.put(functools.partial(self._hand_back, async_run=async_run))
            self._loop.loop.call_soon_threadsafe(self._interrupt, async_run, asyncio.CancelledError())
        return len(stragglers)

    def _hand_back(self, dispatcher: Dispatcher, *, async_run: AsyncRun) -> None:
        """The slot itself is released when the cancelled task ends."""
        dispatcher.acknowledge(async_run.run, async_run.run.hand_back())
        self._context.observer.done(async_run.slot)

    def close(self, timeout: float | None = None) -> None:
        """After `wait_idle` or `abandon`: file what is left to acknowledge, then end the acker and the feeder."""
        self._acks.put(None)
        self._acker_thread.join(timeout)
        self._feeder_thread.join(timeout)
