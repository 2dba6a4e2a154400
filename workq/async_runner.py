"""Runs the jobs of `async def` handlers on the pool's event loop, at most `async_concurrency` at once.

The loop never waits on Redis: dispatch threads talk to Redis for it, each through a `Dispatcher` (the same fetches
and acknowledgements as thread workers). Whenever runs end or seats are free, one of them files what ended and
fetches into every free seat in one round trip, then hands the new jobs to the loop. There are a few more seats
than slots (`prefetch`): the loop keeps the jobs fetched ahead waiting, so a slot that frees starts the next job at
once instead of a round trip later. Each slot has a worker id of its own, so observations show every async run
like a thread worker's job (a job waiting on the loop is not observed yet).

Time-outs and cancels cancel the task; the run then ends as `JobTimeout` / `Cancelled` would in a thread. A job
waiting on the loop when the pool stops is handed back unstarted; at `stop(grace)`, tasks still running after the
grace period are handed back to their queues and cancelled.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from workq.dispatcher import IDLE_POLL, Dispatcher
from workq.errors import Cancelled, JobTimeout
from workq.event_loop import EventLoopThread
from workq.job import Job
from workq.middleware import AsyncJobChain
from workq.pool_context import FetchOrder, WorkerContext
from workq.run import STOPPING_OUTCOMES, Finished, Run
from workq.wakeup import Wakeup

logger = logging.getLogger("workq")

FETCH_BATCH = 100
"""Most jobs one round trip fetches (as many as seats are free)."""
ACK_BATCH = 200
"""Most ended runs one round trip files."""
PREFETCH_SHARE = 4
"""Jobs fetched ahead to wait on the loop: `async_concurrency // PREFETCH_SHARE`, at least one. Enough to cover a
round trip or two at full speed (100 slots of 50 ms jobs: 2,000 jobs/s, 25 jobs = 12 ms); each holds a job that
other pools could run meanwhile, and counts against its max_concurrency."""
DISPATCH_THREADS = 2
"""Dispatch threads per pool: while one waits for Redis, the other files and fetches (a loaded host or a distant
Redis makes each round trip slow; two keep the slots busy)."""


@dataclass(eq=False)
class AsyncRun:
    """A run on the loop: its slot once it starts, its task and, once something interrupts it, why."""

    run: Run
    job: Job
    slot: str = ""
    task: asyncio.Task[None] | None = None
    deadline: float = 0.0
    """`time.monotonic()` after which the task is cancelled as timed out (0: no time limit)."""
    interrupt: BaseException | None = None
    """What the run ends with once its task was cancelled on purpose: JobTimeout, Cancelled."""
    handed_back: bool = False
    released: bool = False


@dataclass(frozen=True)
class _Ended:
    """A run whose task ended, with what it ended with (None: the handler returned)."""

    async_run: AsyncRun
    outcome: BaseException | None


_WAKE = "wake"
_CLOSE = "close"
Mail = _Ended | list[_Ended] | Callable[[Dispatcher], object] | str


class Inbox(Wakeup):
    """What the dispatch thread waits on: ended runs, other Redis work (lease extensions, hand-backs) and, as the
    `Wakeup` of the async job names, word that jobs may be waiting."""

    def __init__(self) -> None:
        super().__init__()
        self._mail: queue.SimpleQueue[Mail] = queue.SimpleQueue()

    def notify_one(self) -> None:
        self._mail.put(_WAKE)

    def notify(self) -> None:
        self._mail.put(_WAKE)

    def put(self, mail: Mail) -> None:
        self._mail.put(mail)

    def put_ended(self, ended: list[_Ended]) -> None:
        """Runs that ended together, as one piece of mail: one wake-up of a dispatch thread for them all."""
        self._mail.put(ended)

    def take(self, timeout: float | None, limit: int) -> list[Mail]:
        """What is waiting (about `limit` at most), after waiting up to `timeout` s for the first (0: do not wait);
        runs that ended together come one by one."""
        try:
            first = self._mail.get(timeout=timeout) if timeout != 0 else self._mail.get_nowait()
        except queue.Empty:
            return []
        taken: list[Mail] = []
        while True:
            if isinstance(first, list):
                taken.extend(first)
            else:
                taken.append(first)
            if len(taken) >= limit or first == _CLOSE:  # one close per dispatch thread
                return taken
            try:
                first = self._mail.get_nowait()
            except queue.Empty:
                return taken


class _Seats:
    """How many more runs may be fetched (slots plus prefetch, less the runs fetched and not yet filed), shared by
    the dispatch threads: each reserves the seats it fetches for."""

    def __init__(self, count: int) -> None:
        self._free = count
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return self._free > 0

    def reserve(self, most: int) -> int:
        with self._lock:
            taken = min(most, self._free)
            self._free -= taken
            return taken

    def give_back(self, count: int) -> None:
        with self._lock:
            self._free += count


class AsyncRunner:
    """The async executor of one started pool. `start()` after the event loop started; `stop_fetching()`, then
    `wait_idle()` / `abandon()`, then `close()`."""

    def __init__(
        self, context: WorkerContext, order: FetchOrder, inbox: Inbox, loop: EventLoopThread, concurrency: int
    ) -> None:
        self._context = context
        self._order = order
        self._inbox = inbox
        self._loop = loop
        self.worker_ids = [secrets.token_hex(12) for _ in range(concurrency)]
        self.prefetch = max(1, concurrency // PREFETCH_SHARE)
        self._free_seats = _Seats(concurrency + self.prefetch)
        self._free_slots = list(self.worker_ids)
        """Slots no task runs in (touched on the loop only)."""
        self._waiting: deque[AsyncRun] = deque()
        """Runs fetched ahead, begun, waiting on the loop for a free slot (touched on the loop only)."""
        self._running: set[AsyncRun] = set()
        """Every run fetched and not yet filed, waiting or running (under `_idle`)."""
        self._ended: list[_Ended] = []
        """Runs ended on the loop since its last hand-over to the dispatch threads (touched on the loop only)."""
        self._idle = threading.Condition()
        self._dispatchers = [Dispatcher(f"async dispatcher {n}", context) for n in range(DISPATCH_THREADS)]
        self._threads = [
            threading.Thread(target=self._dispatch, args=(dispatcher,), name=f"workq-async-dispatcher-{n}", daemon=True)
            for n, dispatcher in enumerate(self._dispatchers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    # --- the dispatch thread -------------------------------------------------------------------------------

    def _dispatch(self, dispatcher: Dispatcher) -> None:
        stopping = self._context.stopping
        idle = woken = closing = False
        try:
            while not closing:
                can_fetch = bool(self._free_seats) and not idle and not stopping.is_set()
                mail = self._inbox.take(0 if can_fetch else (IDLE_POLL if idle else None), ACK_BATCH)
                if _CLOSE in mail:
                    closing = True
                    mail = mail[: mail.index(_CLOSE)]
                if idle and (not mail or _WAKE in mail):  # woken, or time for the idle poll
                    idle, woken = False, bool(mail)
                ended = [item for item in mail if isinstance(item, _Ended)]
                # Fetch with every ack, idle or not: the runs that ended may have freed a max_concurrency cap.
                fetching = not stopping.is_set() and (not idle or bool(ended))
                seats = len(ended)  # theirs to reuse, or to give back
                if fetching:
                    seats += self._free_seats.reserve(max(0, FETCH_BATCH - seats))
                fetched = self._exchange(dispatcher, ended, seats, woken if fetching else None)
                if fetching and seats:
                    idle = not fetched
                woken = False
                for item in mail:
                    if callable(item):
                        self._do(dispatcher, item)
        finally:
            dispatcher.close()

    def _exchange(self, dispatcher: Dispatcher, ended: list[_Ended], seats: int, woken: bool | None) -> int:
        """File `ended` and, unless `woken` is None, fetch into `seats` in one round trip; hand the jobs to the
        loop. Seats left over are free again. Returns how many jobs went to the loop."""
        context = self._context
        wanted = 0 if woken is None else min(FETCH_BATCH, seats)
        for _ in range(wanted):
            context.in_flight.add()  # before the fetch: drain() must not miss a job on its way
        runs: list[Run] = []
        try:
            acks = [
                (end.async_run.run, context.outcomes.ack_for(end.async_run.run, end.async_run.job, end.outcome))
                for end in ended
                if not end.async_run.handed_back
            ]
            runs = dispatcher.exchange(acks, self._order, wanted, bool(woken))
            if any(isinstance(end.outcome, STOPPING_OUTCOMES) for end in ended):
                context.stopping.set()
        except Exception as exc:
            dispatcher.note_fault(exc)
        finally:
            self._release([end.async_run for end in ended])
        fetched = []
        try:
            for run in runs:
                job = dispatcher.prepare(run)
                if not isinstance(job, Finished):  # else not a job: filed dead already
                    fetched.append(AsyncRun(run, job))
        except Exception as exc:
            dispatcher.note_fault(exc)
        finally:
            if fetched:
                self._launch(fetched)
            self._free_seats.give_back(seats - len(fetched))
            for _ in range(wanted - len(fetched)):
                context.in_flight.remove()
        return len(fetched)

    def _launch(self, async_runs: list[AsyncRun]) -> None:
        for async_run in async_runs:
            async_run.job._checkin_hook = functools.partial(self._checkin, async_run)
        with self._idle:
            self._running.update(async_runs)
        self._loop.loop.call_soon_threadsafe(self._queue, async_runs)

    def _release(self, async_runs: list[AsyncRun]) -> None:
        """The runs are over and filed (their seats go on with the exchange that filed them)."""
        released = [async_run for async_run in async_runs if not async_run.released]
        if not released:
            return
        for async_run in released:
            async_run.released = True
        with self._idle:
            self._running.difference_update(released)
            self._idle.notify_all()
        for _ in released:
            self._context.in_flight.remove()

    def _do(self, dispatcher: Dispatcher, work: Callable[[Dispatcher], object]) -> None:
        try:
            work(dispatcher)
        except Exception as exc:
            dispatcher.note_fault(exc)

    # --- on the loop ---------------------------------------------------------------------------------------

    def _queue(self, async_runs: list[AsyncRun]) -> None:
        self._waiting.extend(async_runs)
        self._start_waiting()

    def _start_waiting(self) -> None:
        """Start waiting runs in the free slots; once the pool is stopping, hand them back unstarted instead."""
        if self._context.stopping.is_set():
            while self._waiting:
                async_run = self._waiting.popleft()
                if not async_run.handed_back:
                    async_run.handed_back = True
                    self._inbox.put(functools.partial(self._hand_back, async_run=async_run))
                self._end(_Ended(async_run, None))
            return
        loop = self._loop.loop
        while self._waiting and self._free_slots:
            async_run = self._waiting.popleft()
            if async_run.handed_back or async_run.interrupt is not None:  # abandoned or cancelled on its way here
                self._end(_Ended(async_run, async_run.interrupt))
                continue
            async_run.slot = self._free_slots.pop()
            self._context.observer.started(async_run.slot, async_run.job)
            timeout = async_run.run.registration.options.timeout
            if timeout:
                async_run.deadline = time.monotonic() + timeout
                loop.call_later(timeout, self._check_deadline, async_run)
            async_run.task = loop.create_task(self._execute(async_run), name=f"workq {async_run.job.name}")

    async def _execute(self, async_run: AsyncRun) -> None:
        outcome: BaseException | None = None
        try:
            await cast(AsyncJobChain, async_run.run.registration.chain)(async_run.job)
        except BaseException as exc:  # a handler's KeyboardInterrupt/SystemExit hands its job back: see Outcomes
            outcome = exc
        if async_run.interrupt is not None:  # cancelled on purpose, whether or not the handler let it through
            outcome = async_run.interrupt
        elif isinstance(outcome, STOPPING_OUTCOMES):  # the pool stops: no waiting job may start after this one
            self._context.stopping.set()
        self._context.observer.done(async_run.slot)
        self._free_slots.append(async_run.slot)
        self._end(_Ended(async_run, outcome))
        self._start_waiting()

    def _end(self, ended: _Ended) -> None:
        """On the loop: hand `ended` over with every other run that ends in this turn of the loop (runs started
        together end together: one wake-up and one round trip for the lot)."""
        if not self._ended:
            self._loop.loop.call_soon(self._hand_over)
        self._ended.append(ended)

    def _hand_over(self) -> None:
        ended, self._ended = self._ended, []
        self._inbox.put_ended(ended)

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
        elif async_run in self._waiting:  # ends unstarted (one on its way to the loop does when it gets there)
            self._waiting.remove(async_run)
            self._end(_Ended(async_run, async_run.interrupt))

    def _checkin(self, async_run: AsyncRun, message: str) -> None:
        """Record progress and push the time limit back; the lease is extended by the dispatch thread."""
        self._context.observer.checkin(async_run.slot, async_run.job, message)
        timeout = async_run.run.registration.options.timeout
        if timeout:
            async_run.deadline = time.monotonic() + timeout
        if async_run.run.lease:
            self._inbox.put(lambda dispatcher: dispatcher.extend_lease(async_run.run, async_run.job))

    # --- control -------------------------------------------------------------------------------------------

    def cancel(self, job_id: str) -> bool:
        """Interrupt the job `job_id` (`Client.cancel`), running or waiting to: it ends as `Cancelled`. False if this
        pool does not hold it."""
        with self._idle:
            chosen = [async_run for async_run in self._running if async_run.job.id == job_id]
        for async_run in chosen:
            self._loop.loop.call_soon_threadsafe(self._interrupt, async_run, Cancelled("cancelled"))
        return bool(chosen)

    def running_job_ids(self) -> set[str]:
        with self._idle:
            return {async_run.job.id for async_run in self._running}

    def held_payloads(self) -> Counter[bytes]:
        with self._idle:
            return Counter(async_run.run.payload for async_run in self._running)

    def held_leases(self) -> set[bytes]:
        with self._idle:
            return {async_run.run.lease for async_run in self._running if async_run.run.lease}

    @property
    def fetching(self) -> bool:
        return any(dispatcher.fetching for dispatcher in self._dispatchers)

    def stop_fetching(self) -> None:
        """The pool is stopping (its `stopping` event is set): wake the dispatch threads if they wait, and hand back
        the jobs waiting on the loop."""
        self._inbox.notify()
        if not self._loop.loop.is_closed():
            self._loop.loop.call_soon_threadsafe(self._start_waiting)

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait for every run to be acknowledged; False if some still run after `timeout` seconds."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._running, timeout)

    def abandon(self) -> int:
        """Hand the jobs still held back to their queues and cancel their tasks (the stop grace ran out)."""
        with self._idle:
            stragglers = [async_run for async_run in self._running if not async_run.handed_back]
        for async_run in stragglers:
            async_run.handed_back = True
            self._inbox.put(functools.partial(self._hand_back, async_run=async_run))
            self._loop.loop.call_soon_threadsafe(self._interrupt, async_run, asyncio.CancelledError())
        return len(stragglers)

    def _hand_back(self, dispatcher: Dispatcher, *, async_run: AsyncRun) -> None:
        """The run itself is released (and its slot freed) when its cancelled task ends."""
        dispatcher.acknowledge(async_run.run, async_run.run.hand_back())

    def close(self, timeout: float | None = None) -> None:
        """After `wait_idle` or `abandon`: file what is left to acknowledge, then end the dispatch threads."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for _ in self._threads:
            self._inbox.put(_CLOSE)
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
