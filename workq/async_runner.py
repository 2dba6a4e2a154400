"""Runs the jobs of `async def` handlers on the pool's event loop, at most `async_concurrency` at once.

The loop never waits on Redis: its dispatch loop (`workq.dispatch_loop`, the same one that feeds thread workers)
files what ended and fetches into free slots in one round trip, then hands the new jobs to the loop, which runs each
chain as a task. Each slot has a worker id of its own, so observations show every async run like a thread worker's
job.

Time-outs and cancels cancel the task; the run then ends as `JobTimeout` / `Cancelled` would in a thread. At
`stop(grace)`, tasks still running after the grace period are handed back to their queues and cancelled.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from dataclasses import dataclass
from typing import cast

from workq.dispatch_loop import DispatchLoop, Inbox, Started
from workq.errors import Cancelled, JobTimeout
from workq.event_loop import EventLoopThread
from workq.middleware import AsyncJobChain
from workq.pool_context import WorkerContext
from workq.priority_sampler import PrioritySampler
from workq.registration import Registration

logger = logging.getLogger("workq")


@dataclass(eq=False)
class AsyncRun(Started):
    """A run on the loop: its slot, its task and, once something interrupts it, why."""

    task: asyncio.Task[None] | None = None
    deadline: float = 0.0
    """`time.monotonic()` after which the task is cancelled as timed out (0: no time limit)."""
    interrupt: BaseException | None = None
    """What the run ends with once its task was cancelled on purpose: JobTimeout, Cancelled."""


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
        self.worker_ids = [secrets.token_hex(12) for _ in range(concurrency)]
        self.dispatch: DispatchLoop[AsyncRun] = DispatchLoop(
            "async", context, order=order, inbox=inbox, slots=self.worker_ids, make=AsyncRun, launch=self._launch
        )

    def start(self) -> None:
        self.dispatch.start()

    def _launch(self, async_runs: list[AsyncRun]) -> list[AsyncRun]:
        """On a dispatch thread: the new runs go to the loop (it refuses none: one handed back meanwhile ends at
        once, see `_create_tasks`)."""
        for async_run in async_runs:
            timeout = async_run.run.registration.options.timeout
            if timeout:
                async_run.deadline = time.monotonic() + timeout
            async_run.job._checkin_hook = functools.partial(self._checkin, async_run)
        self._loop.loop.call_soon_threadsafe(self._create_tasks, async_runs)
        return []

    # --- on the loop ---------------------------------------------------------------------------------------

    def _create_tasks(self, async_runs: list[AsyncRun]) -> None:
        loop = self._loop.loop
        for async_run in async_runs:
            if async_run.handed_back:  # abandoned before it started
                self.dispatch.end(async_run, None)
                continue
            async_run.task = loop.create_task(self._execute(async_run), name=f"workq {async_run.job.name}")
            if async_run.deadline:
                loop.call_later(async_run.deadline - time.monotonic(), self._check_deadline, async_run)

    async def _execute(self, async_run: AsyncRun) -> None:
        outcome: BaseException | None = None
        try:
            await cast(AsyncJobChain, async_run.run.registration.chain)(async_run.job)
        except BaseException as exc:  # a handler's KeyboardInterrupt/SystemExit hands its job back: see Outcomes
            outcome = exc
        if async_run.interrupt is not None:  # cancelled on purpose, whether or not the handler let it through
            outcome = async_run.interrupt
        self.dispatch.end(async_run, outcome)

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
        async_run.job._cancelled = True
        logger.warning("job %s %s timed out after %g s: cancelling it", async_run.job.name, async_run.job.id, timeout)
        task.cancel()

    def _interrupt(self, async_run: AsyncRun, reason: BaseException) -> None:
        if async_run.interrupt is None or isinstance(reason, Cancelled):  # a cancel wins over a time-out
            async_run.interrupt = reason
        async_run.job._cancelled = True
        if async_run.task is not None:
            async_run.task.cancel()

    def _checkin(self, async_run: AsyncRun, message: str) -> None:
        """Record progress and push the time limit back; the lease is extended by the dispatch thread."""
        self._context.observer.checkin(async_run.slot, async_run.job, message)
        timeout = async_run.run.registration.options.timeout
        if timeout:
            async_run.deadline = time.monotonic() + timeout
        if async_run.run.lease:
            self.dispatch.later(lambda dispatcher: dispatcher.extend_lease(async_run.run, async_run.job))

    # --- control -------------------------------------------------------------------------------------------

    def cancel(self, job_id: str) -> bool:
        """Interrupt the running job `job_id` (`Client.cancel`): it ends as `Cancelled`. False if not running here."""
        chosen = [async_run for async_run in self.dispatch.held() if async_run.job.id == job_id]
        for async_run in chosen:
            self._loop.loop.call_soon_threadsafe(self._interrupt, async_run, Cancelled("cancelled"))
        return bool(chosen)

    def running_job_ids(self) -> set[str]:
        return {async_run.job.id for async_run in self.dispatch.held()}

    def stop_fetching(self) -> None:
        """The pool is stopping (its `stopping` event is set): wake the dispatch threads if they wait."""
        self.dispatch.stop_fetching()

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait for every run to be acknowledged; False if some still run after `timeout` seconds."""
        return self.dispatch.wait_idle(timeout)

    def abandon(self) -> int:
        """Hand the jobs still running back to their queues and cancel their tasks (the stop grace ran out)."""
        stragglers = self.dispatch.running()
        self.dispatch.hand_back(stragglers, release=False)  # each slot is released when its cancelled task ends
        for async_run in stragglers:
            self._loop.loop.call_soon_threadsafe(self._interrupt, async_run, asyncio.CancelledError())
        return len(stragglers)

    def close(self, timeout: float | None = None) -> None:
        """After `wait_idle` or `abandon`: file what is left to acknowledge, then end the dispatch threads."""
        self.dispatch.close(timeout)
