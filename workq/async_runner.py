"""Runs the jobs of `async def` handlers on the pool's event loop, at most `async_concurrency` at once.

The loop never waits on Redis: its dispatch loop (`workq.dispatch_loop`, the same one that feeds thread workers)
files what ended and fetches into every free seat in one round trip, then hands the new jobs to the loop. There are
a few more seats than slots (`prefetch`): the loop keeps the jobs fetched ahead waiting, so a slot that frees starts
the next job at once instead of a round trip later. Each slot has a worker id of its own, so observations show every
async run like a thread worker's job (a job waiting on the loop is not observed yet).

Runs are watched by the pool's watchdog (`workq.time_limits`) as a thread worker's are: a time-out or a cancel
cancels the task, and the run ends as `JobTimeout` / `Cancelled` whatever the handler does with the cancellation; a
task that has not ended `ABANDON_AFTER` seconds later (it swallowed the cancellation, or it blocks the loop) is
abandoned: its outcome is filed without it, and its slot stays busy (and counted stuck) until it ends. A job waiting
on the loop when the pool stops is handed back unstarted; at `stop(grace)`, tasks still running after the grace
period are handed back to their queues and cancelled.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import cast

from workq.dispatch_loop import DispatchLoop, Ended, Inbox, Started
from workq.dispatcher import Dispatcher
from workq.errors import Cancelled
from workq.event_loop import EventLoopThread
from workq.job import Job
from workq.middleware import AsyncJobChain
from workq.pool_context import WorkerContext
from workq.priority_sampler import PrioritySampler
from workq.registration import Registration
from workq.run import STOPPING_OUTCOMES, Run
from workq.time_limits import CANCELLED, LEASE_MARGIN, RunControl

logger = logging.getLogger("workq")

PREFETCH_SHARE = 4
"""Jobs fetched ahead to wait on the loop: `async_concurrency // PREFETCH_SHARE`, at least one. Enough to cover a
round trip or two at full speed (100 slots of 50 ms jobs: 2,000 jobs/s, 25 jobs = 12 ms); each holds a job that
other pools could run meanwhile, and counts against its max_concurrency."""


@dataclass(eq=False)
class AsyncRun(Started):
    """A run on the loop: its slot, task and watchdog control once it starts. It owns its run for the watchdog
    (checkins, abandon), on behalf of its runner."""

    runner: AsyncRunner | None = None
    task: asyncio.Task[None] | None = None
    control: RunControl | None = None
    fetched_at: float = 0.0
    """`time.monotonic()` when it reached the loop (after its fetch)."""
    cancelled: bool = False
    """Cancelled before it started: it ends so as it reaches a slot."""

    def on_checkin(self, control: RunControl, message: str) -> None:
        cast(AsyncRunner, self.runner).checkin(self, control, message)

    def on_abandoned(self, control: RunControl) -> None:
        cast(AsyncRunner, self.runner).file_abandoned(self, control)


class AsyncRunner:
    """The async executor of one started pool. `start()` after the event loop started; `stop_fetching()`, then
    `wait_idle()` / `abandon()`, then `close()`."""

    def __init__(
        self,
        context: WorkerContext,
        order: PrioritySampler[Registration],
        inbox: Inbox,
        loop: EventLoopThread,
        concurrency: int,
    ) -> None:
        self._context = context
        self._loop = loop
        self._runs = Dispatcher("async runs", context, dedicated=False)
        """Over the pool's shared client: files a run the watchdog abandoned (the loop may be the one stuck)."""
        self.worker_ids = [secrets.token_hex(12) for _ in range(concurrency)]
        self.prefetch = max(1, concurrency // PREFETCH_SHARE)
        self._free_slots = list(self.worker_ids)
        """Slots no task runs in (touched on the loop only)."""
        self._waiting: deque[AsyncRun] = deque()
        """Runs fetched ahead, prepared, waiting on the loop for a free slot (touched on the loop only)."""
        self._ended: list[Ended] = []
        """Runs ended on the loop since its last hand-over to the dispatch threads (touched on the loop only)."""
        self.dispatch: DispatchLoop[AsyncRun] = DispatchLoop(
            "async",
            context,
            order=order,
            inbox=inbox,
            seats=concurrency + self.prefetch,
            make=self._make,
            launch=self._launch,
            ordered=True,
        )
        """Fetches for the free seats and files the runs that ended."""

    def start(self) -> None:
        self.dispatch.start()

    def _make(self, run: Run, job: Job) -> AsyncRun:
        return AsyncRun(run, job, runner=self)

    def _launch(self, async_runs: list[AsyncRun]) -> list[AsyncRun]:
        """On a dispatch thread: the new runs go to the loop (it refuses none: once the pool stops, it hands back
        those still waiting)."""
        now = time.monotonic()
        for async_run in async_runs:
            async_run.fetched_at = now
        self._loop.loop.call_soon_threadsafe(self._queue, async_runs)
        return []

    # --- on the loop ---------------------------------------------------------------------------------------

    def _queue(self, async_runs: list[AsyncRun]) -> None:
        self._waiting.extend(async_runs)
        self._start_waiting()

    def _start_waiting(self) -> None:
        """Start waiting runs in the free slots; once the pool is stopping, hand them back unstarted instead."""
        if self._context.stopping.is_set():
            unstarted = list(self._waiting)
            self._waiting.clear()
            self.dispatch.hand_back(unstarted, release=False)
            for async_run in unstarted:
                self._end(Ended(async_run, None))
            return
        while self._waiting and self._free_slots:
            async_run = self._waiting.popleft()
            if async_run.handed_back or async_run.cancelled:  # handed back or cancelled on its way here
                self._end(Ended(async_run, _cancelled_unstarted() if async_run.cancelled else None))
                continue
            if async_run.run.lease and time.monotonic() - async_run.fetched_at > LEASE_MARGIN:
                # Its lease (taken at the fetch) has too little left to cover the run: back to the front of its
                # queue, to be fetched again with a fresh one, rather than run while the lease keeper may take it.
                logger.info(
                    "job %s %s waited %.1f s for a slot: back to its queue, for a fresh lease",
                    async_run.job.name,
                    async_run.job.id,
                    time.monotonic() - async_run.fetched_at,
                )
                self.dispatch.hand_back([async_run], release=False)
                self._end(Ended(async_run, None))
                continue
            self._begin(async_run)

    def _begin(self, async_run: AsyncRun) -> None:
        """Start the run in a free slot, watched from now. The task is created (its first step queued) before the
        watchdog may cancel it: a task cancelled before its first step would never run `_execute`, nor end."""
        run, job, watchdog = async_run.run, async_run.job, self._context.watchdog
        async_run.slot = self._free_slots.pop()
        self._context.observer.started(async_run.slot, job)
        control = watchdog.watch(
            job, run.registration.options.timeout, async_run, run, functools.partial(self._interrupt, async_run)
        )
        async_run.control = job._checkin_hook = control
        async_run.task = self._loop.loop.create_task(self._execute(async_run, control), name=f"workq {job.name}")
        watchdog.begin(control)

    async def _execute(self, async_run: AsyncRun, control: RunControl) -> None:
        raised: BaseException | None = None
        try:
            await cast(AsyncJobChain, async_run.run.registration.chain)(async_run.job)
        except BaseException as exc:  # a handler's KeyboardInterrupt/SystemExit hands its job back: see Outcomes
            raised = exc
        self._context.watchdog.finish(control)
        outcome = control.outcome(raised)  # a time-out or cancel, whatever the handler did with the cancellation
        if control.abandoned:
            job = async_run.job
            logger.warning("job %s %s returned after it was abandoned: this late outcome is dropped", job.name, job.id)
        elif isinstance(outcome, STOPPING_OUTCOMES):  # the pool stops: no waiting job may start after this one
            self._context.stopping.set()
        self._context.observer.done(async_run.slot)
        self._free_slots.append(async_run.slot)
        self._end(Ended(async_run, outcome, filed=control.abandoned))
        self._start_waiting()

    def _end(self, ended: Ended) -> None:
        """On the loop: hand `ended` over with every other run that ends in this turn of the loop (runs started
        together end together: one wake-up and one round trip for the lot)."""
        if not self._ended:
            self._loop.loop.call_soon(self._hand_over)
        self._ended.append(ended)

    def _hand_over(self) -> None:
        ended, self._ended = self._ended, []
        self.dispatch.end_many(ended)

    def _interrupt(self, async_run: AsyncRun, exc_type: type[BaseException] | None) -> None:
        """From the watchdog (under its lock): cancel the task, on the loop. (An interrupt not delivered yet needs
        no forgetting: cancelling a task that ended does nothing.)"""
        if exc_type is not None:
            self._loop.loop.call_soon_threadsafe(cast(asyncio.Task[None], async_run.task).cancel)

    def _cancel(self, async_run: AsyncRun) -> None:
        """A cancel by job id: through the watchdog once the run began; else the run ends unstarted, now if it
        waits for a slot, as it reaches the loop if it is on its way."""
        if async_run.control is not None:
            self._context.watchdog.cancel_run(async_run.control)
        elif async_run in self._waiting:
            self._waiting.remove(async_run)
            self._end(Ended(async_run, _cancelled_unstarted()))
        else:
            async_run.cancelled = True

    # --- the run's owner, for the watchdog -----------------------------------------------------------------

    def checkin(self, async_run: AsyncRun, control: RunControl, message: str) -> None:
        """`job.checkin()`: record progress and give the run its whole time limit again; its lease is pushed as far
        by a dispatch thread (the loop never waits on Redis). A run that was stopped is told so."""
        job = control.job
        if not control.admit_checkin():
            return
        self._context.observer.checkin(async_run.slot, job, message)
        self._context.watchdog.extend(control)
        if async_run.run.lease:
            self.dispatch.later(lambda dispatcher: dispatcher.extend_lease(async_run.run, job))

    def file_abandoned(self, async_run: AsyncRun, control: RunControl) -> None:
        """On the watchdog's abandoning thread: file the run (its task has not ended, or the loop is stuck)."""
        ack, _ = self._runs.ending(async_run.run, async_run.job, control.outcome(None))
        self._runs.acknowledge(async_run.run, ack)

    # --- control -------------------------------------------------------------------------------------------

    def cancel(self, job_id: str) -> bool:
        """Interrupt the job `job_id` (`Client.cancel`), running or waiting to: it ends as `Cancelled`. False if this
        pool does not hold it."""
        chosen = [async_run for async_run in self.dispatch.held() if async_run.job.id == job_id]
        for async_run in chosen:
            self._loop.loop.call_soon_threadsafe(self._cancel, async_run)
        return bool(chosen)

    def running_job_ids(self) -> set[str]:
        return {async_run.job.id for async_run in self.dispatch.held()}

    def stop_fetching(self) -> None:
        """The pool is stopping (its `stopping` event is set): wake the dispatch threads if they wait, and hand back
        the jobs waiting on the loop."""
        self.dispatch.stop_fetching()
        if not self._loop.loop.is_closed():
            self._loop.loop.call_soon_threadsafe(self._start_waiting)

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait for every run to be acknowledged; False if some still run after `timeout` seconds."""
        return self.dispatch.wait_idle(timeout)

    def abandon(self) -> int:
        """Hand the jobs still held back to their queues and cancel their tasks (the stop grace ran out)."""
        stragglers = self.dispatch.running()
        self.dispatch.hand_back(stragglers, release=False)  # each is released when its cancelled task ends
        for async_run in stragglers:
            if async_run.task is not None:  # else it waits for a slot: the stopping loop hands it back unstarted
                self._loop.loop.call_soon_threadsafe(async_run.task.cancel)
        return len(stragglers)

    def close(self, timeout: float | None = None) -> None:
        """After `wait_idle` or `abandon`: file what is left to acknowledge, then end the dispatch threads."""
        self.dispatch.close(timeout)


def _cancelled_unstarted() -> Cancelled:
    return Cancelled(f"{CANCELLED} before it started (workq.Client.cancel)")
