"""The one place per executor where jobs are fetched and runs acknowledged, in batches.

Dispatch threads (`DISPATCH_THREADS`, each with a `Dispatcher` and its own connection) wait on an `Inbox` for runs
that ended and for word that jobs may be waiting. Each time, one of them files every run that ended and fetches into
free seats, in one round trip, then hands the new jobs to the executor: thread workers (`workq.thread_runner`, a
seat per thread) or the event loop (`workq.async_runner`, a seat per slot plus a few fetched ahead). A fetch asks for
at most twice as many jobs as the last one got, plus one: one job when a single job waits (no wait for a batch to
fill), every free seat within a few round trips under load.

A job is held (`held_payloads`, for the orphan sweeper) and in flight (for `drain()`) from its fetch until its ack is
sent; jobs handed to an executor that has not started them go back to their queues with `hand_back`.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

from workq.dispatcher import IDLE_POLL, Dispatcher
from workq.job import Job
from workq.pool_context import WorkerContext
from workq.priority_sampler import PrioritySampler
from workq.registration import Registration
from workq.run import STOPPING_OUTCOMES, Finished, Run
from workq.wakeup import Wakeup

logger = logging.getLogger("workq")

FETCH_BATCH = 100
"""Most jobs one round trip fetches."""
ACK_BATCH = 200
"""Most ended runs one round trip files."""
HANDOFF_PAUSE = 0.0005
"""Seconds a dispatch thread woken from idle waits, after handing over the jobs it fetched, before it looks for more:
the worker threads start them meanwhile (its next fetch would hold the GIL ~0.1 ms before its socket wait lets
them run). A burst's further jobs wait that much longer, once."""
DISPATCH_THREADS = 2
"""Dispatch threads per executor: while one waits for Redis, the other files and fetches (a loaded host or a distant
Redis makes each round trip slow; two keep the executor busy)."""


@dataclass(eq=False)
class Started:
    """A fetched job handed to the executor, held until its ack is sent."""

    run: Run
    job: Job
    slot: str = ""
    """The worker id it runs as, once the executor starts it."""
    fetched: int = 0
    """Order of its fetch in this executor (hand-backs go in reverse, keeping queue order)."""
    ended: bool = False
    """The run ended: its ack is on its way."""
    handed_back: bool = False
    """Put back on its queue (the pool stopped): how the run itself ends is not filed."""
    released: bool = False


class Ended(NamedTuple):
    """A run that ended, with what it ended with (None: the handler returned). A tuple: one is made per run."""

    started: Started
    outcome: BaseException | None
    filed: bool = False
    """Already filed elsewhere (the watchdog abandoned it): only its seat and count are given back."""


_WAKE = "wake"
_CLOSE = "close"
Mail = Ended | list[Ended] | Callable[[Dispatcher], object] | str


class Inbox(Wakeup):
    """What the dispatch threads wait on: ended runs, other Redis work (lease extensions, hand-backs) and, as the
    `Wakeup` of the executor's job names, word that jobs may be waiting."""

    def __init__(self) -> None:
        super().__init__()
        self._mail: queue.SimpleQueue[Mail] = queue.SimpleQueue()

    def notify_one(self) -> None:
        self._mail.put(_WAKE)

    def notify(self) -> None:
        self._mail.put(_WAKE)

    def put(self, mail: Mail) -> None:
        self._mail.put(mail)

    def take(self, timeout: float | None, limit: int) -> list[Mail]:
        """What is waiting (about `limit` at most), after waiting up to `timeout` s for the first (0: do not wait);
        runs that ended together (a list) come one by one."""
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
    """How many more jobs may be fetched (the executor's seats, less the jobs fetched and not yet filed), shared by
    the dispatch threads: each reserves the seats it fetches for."""

    def __init__(self, count: int) -> None:
        self._free = count
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return self._free > 0

    def reserve(self, most: int) -> int:
        with self._lock:
            taken = max(0, min(most, self._free))
            self._free -= taken
            return taken

    def give_back(self, count: int) -> None:
        with self._lock:
            self._free += count


S = TypeVar("S", bound=Started)


class DispatchLoop(Generic[S]):
    """Fetches for the free seats of one executor and files its ended runs. `make` turns a prepared job into the
    executor's record of it; `launch` hands new ones over (without blocking) and returns those it could not take
    (the pool is stopping: they go straight back to their queues). `ordered`: one fetch at a time, so jobs reach
    `launch` in the order Redis gave them out (an executor where fetched jobs wait for a slot starts them in queue
    order; the other dispatch thread only files meanwhile). `start()`, then `stop_fetching()` when the pool stops,
    `wait_idle()` / `hand_back()`, then `close()`."""

    def __init__(
        self,
        name: str,
        context: WorkerContext,
        *,
        order: PrioritySampler[Registration],
        inbox: Inbox,
        seats: int,
        make: Callable[[Run, Job], S],
        launch: Callable[[list[S]], list[S]],
        ordered: bool = False,
    ) -> None:
        self._name = name
        self._context = context
        self._order = order
        self._inbox = inbox
        self._make = make
        self._launch = launch
        self._free_seats = _Seats(seats)
        self._fetch_turn = threading.Lock() if ordered else None
        """Held by the dispatch thread whose fetch is on its way, from the call to its launch (`ordered` only)."""
        self._held: set[S] = set()
        """Every job fetched and not yet filed (under `_idle`)."""
        self._idle = threading.Condition()
        self._fetch_order = itertools.count()
        self._dispatchers: list[Dispatcher] = []
        self._threads: list[threading.Thread] = []

    def connect(self) -> None:
        """Open the dispatch threads' connections (a pool starts only once they are open: a fault meanwhile fails
        its start, before it registers)."""
        while len(self._dispatchers) < DISPATCH_THREADS:
            self._dispatchers.append(Dispatcher(f"{self._name} dispatcher {len(self._dispatchers)}", self._context))

    def start(self) -> None:
        """Start the dispatch threads, each on a connection of its own."""
        self.connect()
        for n, dispatcher in enumerate(self._dispatchers):
            thread = threading.Thread(
                target=self._dispatch, args=(dispatcher,), name=f"workq-{self._name}-dispatcher-{n}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    # --- what executors call -------------------------------------------------------------------------------

    def end(self, started: S, outcome: BaseException | None, filed: bool = False) -> None:
        """The run ended: file it with the next round trip (its seat is then fetched for again)."""
        self.end_many([Ended(started, outcome, filed)])

    def end_many(self, ended: list[Ended]) -> None:
        """Runs that ended together, as one piece of mail (one wake-up of a dispatch thread for them all). A
        KeyboardInterrupt or SystemExit stops the pool at once (nothing more is fetched)."""
        for end in ended:
            end.started.ended = True
            if isinstance(end.outcome, STOPPING_OUTCOMES):
                self._context.stopping.set()
        self._inbox.put(ended)

    def later(self, work: Callable[[Dispatcher], object]) -> None:
        """Run `work` on a dispatch thread (Redis work the executor must not wait for)."""
        self._inbox.put(work)

    def held(self) -> list[S]:
        """Every job fetched and not acknowledged yet: waiting to start, running, or ended with its ack on its way."""
        with self._idle:
            return list(self._held)

    def running(self) -> list[S]:
        """The jobs held whose run has not ended (waiting to start, or running), nor been handed back."""
        return [started for started in self.held() if not (started.ended or started.handed_back)]

    def held_payloads(self) -> Counter[bytes]:
        with self._idle:
            return Counter(started.run.payload for started in self._held)

    def held_leases(self) -> set[bytes]:
        with self._idle:
            return {started.run.lease for started in self._held if started.run.lease}

    @property
    def fetching(self) -> bool:
        return any(dispatcher.fetching for dispatcher in self._dispatchers)

    def stop_fetching(self) -> None:
        """The pool is stopping (its `stopping` event is set): wake the dispatch threads if they wait."""
        self._inbox.notify()

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait for every run to be acknowledged; False if some are still held after `timeout` seconds."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._held, timeout)

    def hand_back(self, handed: Sequence[S], release: bool) -> None:
        """Put these jobs back on their queues in one call, last fetched first (the first ends up at the front): jobs
        never started (`release`: their seats and counts are given back now) or runs that outlived the stop grace
        (released when they end, if ever)."""
        marked = self._marked_handed_back(handed)
        if marked:
            self._inbox.put(lambda dispatcher: self._send_back(dispatcher, marked, release))

    def close(self, timeout: float | None = None) -> None:
        """After `wait_idle` or `hand_back`: file what is left to acknowledge, then end the dispatch threads."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for _ in self._threads:
            self._inbox.put(_CLOSE)
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    # --- the dispatch threads ------------------------------------------------------------------------------

    def _dispatch(self, dispatcher: Dispatcher) -> None:
        stopping = self._context.stopping
        idle = closing = False
        last_fetched = 0
        handed_over = False  # the last fetch was a woken idle thread's, and found jobs
        try:
            while not closing:
                can_fetch = bool(self._free_seats) and not idle and not stopping.is_set() and not self._turn_taken()
                look = HANDOFF_PAUSE if handed_over else 0
                mail = self._inbox.take(look if can_fetch else (IDLE_POLL if idle else None), ACK_BATCH)
                if _CLOSE in mail:
                    closing = True
                    mail = mail[: mail.index(_CLOSE)]
                woken = idle and _WAKE in mail
                if idle and (not mail or _WAKE in mail):  # woken, or time for the idle poll
                    idle = False
                ended = [item for item in mail if isinstance(item, Ended)]
                # Fetch with every ack, idle or not: the runs that ended may have freed a max_concurrency cap.
                fetching = not stopping.is_set() and (not idle or bool(ended)) and self._take_turn()
                try:
                    most = min(FETCH_BATCH, 2 * last_fetched + 1) if fetching else 0
                    seats = len(ended) + self._free_seats.reserve(most - len(ended))  # the ended runs' to reuse
                    wanted = min(most, seats)
                    fetched = self._exchange(dispatcher, ended, wanted)
                    self._free_seats.give_back(seats - fetched)
                finally:
                    if fetching and self._fetch_turn is not None:
                        self._fetch_turn.release()
                if wanted:
                    idle, last_fetched = not fetched, fetched
                handed_over = woken and fetched > 0
                for item in mail:
                    if callable(item):
                        self._do(dispatcher, item)
        finally:
            dispatcher.close()

    def _take_turn(self) -> bool:
        """May this thread fetch now? Always, unless `ordered` and the other thread's fetch is on its way."""
        return self._fetch_turn is None or self._fetch_turn.acquire(blocking=False)

    def _turn_taken(self) -> bool:
        return self._fetch_turn is not None and self._fetch_turn.locked()

    def _exchange(self, dispatcher: Dispatcher, ended: list[Ended], wanted: int) -> int:
        """File `ended` and fetch up to `wanted` jobs in one round trip; hand the new jobs to the executor. Returns
        how many it took (each holds a seat until its run is filed)."""
        context = self._context
        context.in_flight.add(wanted)  # before the fetch: drain() must not miss a job on its way
        runs: list[Run] = []
        try:
            acks = [
                (end.started.run, context.outcomes.ack_for(end.started.run, end.started.job, end.outcome))
                for end in ended
                if not (end.filed or end.started.handed_back)
            ]
            runs = dispatcher.exchange(acks, self._order, wanted)
        except Exception as exc:
            dispatcher.note_fault(exc)
        finally:
            self._release([end.started for end in ended])
        started = self._start(dispatcher, runs)
        context.in_flight.remove(wanted - started)
        return started

    def _start(self, dispatcher: Dispatcher, runs: list[Run]) -> int:
        """Prepare each run and hand them to the executor. Returns how many it dealt with: each holds a seat and
        counts in flight until filed (those the executor refused were handed back and gave both back already)."""
        prepared: list[S] = []
        try:
            for run in runs:
                job = dispatcher.prepare(run)
                if not isinstance(job, Finished):  # else not a job: filed dead already
                    prepared.append(self._make(run, job))
        except Exception as exc:
            dispatcher.note_fault(exc)
        if not prepared:
            return 0
        with self._idle:
            for started in prepared:
                started.fetched = next(self._fetch_order)
            self._held.update(prepared)
        refused = self._launch(prepared)
        if refused:
            self._send_back(dispatcher, self._marked_handed_back(refused), release=True)
        return len(prepared)

    def _marked_handed_back(self, handed: Sequence[S]) -> list[S]:
        """Those of `handed` not handed back yet, now marked so, last fetched first."""
        with self._idle:
            marked = sorted((started for started in handed if not started.handed_back), key=lambda s: -s.fetched)
            for started in marked:
                started.handed_back = True
        return marked

    def _send_back(self, dispatcher: Dispatcher, handed: list[S], release: bool) -> None:
        try:
            dispatcher.acknowledge_many([(started.run, started.run.hand_back()) for started in handed])
        finally:
            if release:
                self._release(handed)
                self._free_seats.give_back(len(handed))

    def _release(self, over: Sequence[Started]) -> None:
        """These runs are over and filed, or handed back (those released already are skipped)."""
        released = 0
        with self._idle:
            for started in over:
                if not started.released:
                    started.released = True
                    self._held.discard(started)
                    released += 1
            if released:
                self._idle.notify_all()
        self._context.in_flight.remove(released)

    def _do(self, dispatcher: Dispatcher, work: Callable[[Dispatcher], object]) -> None:
        try:
            work(dispatcher)
        except Exception as exc:
            dispatcher.note_fault(exc)
