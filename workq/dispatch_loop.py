"""The one place per executor where jobs are fetched and runs acknowledged, in batches.

Dispatch threads (`DISPATCH_THREADS`, each with a `Dispatcher` and its own connection) wait on an `Inbox` for runs
that ended and for word that jobs may be waiting. Each time, one of them files every run that ended and fetches into
free slots, in one round trip, then hands the new jobs to the executor: thread workers (`workq.thread_runner`, a slot
per thread) or the event loop (`workq.async_runner`, `async_concurrency` slots). A fetch asks for at most twice as
many jobs as the last one got, plus one: one job when a single job waits (no wait for a batch to fill), all free
slots within a few round trips under load.

A job is held (`held_payloads`, for the orphan sweeper) and in flight (for `drain()`) from its fetch until its ack is
sent; one handed to a slot that has not started it yet is handed back to its queue at once by `hand_back`.
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
from typing import Generic, TypeVar

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
DISPATCH_THREADS = 2
"""Dispatch threads per executor: while one waits for Redis, the other files and fetches (a loaded host or a distant
Redis makes each round trip slow; two keep the slots busy)."""


@dataclass(eq=False)
class Started:
    """A job handed to a slot: fetched, observed as running there, and held until its ack is sent."""

    run: Run
    job: Job
    slot: str
    fetched: int = 0
    """Order of its fetch in this process (hand-backs go in reverse, keeping queue order)."""
    ended: bool = False
    """The run ended: its ack is on its way."""
    handed_back: bool = False
    """Put back on its queue by a stop: how the run itself ends is not filed."""
    released: bool = False


@dataclass(frozen=True)
class Ended:
    """A run that ended, with what it ended with (None: the handler returned)."""

    started: Started
    outcome: BaseException | None
    filed: bool = False
    """Already filed elsewhere (the watchdog abandoned it): only its slot and count are given back."""


_WAKE = "wake"
_CLOSE = "close"
Mail = Ended | Callable[[Dispatcher], object] | str


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
        """What is waiting (at most `limit`), after waiting up to `timeout` s for the first (0: do not wait)."""
        try:
            taken = [self._mail.get(timeout=timeout) if timeout != 0 else self._mail.get_nowait()]
        except queue.Empty:
            return []
        while len(taken) < limit and taken[-1] != _CLOSE:  # one close per dispatch thread
            try:
                taken.append(self._mail.get_nowait())
            except queue.Empty:
                break
        return taken


class _Slots:
    """The free slots, shared by the dispatch threads: each reserves the slots it fetches for."""

    def __init__(self, ids: Sequence[str]) -> None:
        self._free = list(ids)
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._free)

    def reserve(self, most: int) -> list[str]:
        with self._lock:
            taken, self._free = self._free[:most], self._free[most:]
            return taken

    def give_back(self, slots: list[str]) -> None:
        with self._lock:
            self._free.extend(slots)


S = TypeVar("S", bound=Started)


class DispatchLoop(Generic[S]):
    """Fetches into the free slots of one executor and files its ended runs. `make` turns a begun job into the
    executor's record of it; `launch` hands new ones to their slots (without blocking) and returns those it could
    not (the pool is stopping: they go straight back to their queues). `start()`, then `stop_fetching()` when the
    pool stops, `wait_idle()` / `hand_back()`, then `close()`."""

    def __init__(
        self,
        name: str,
        context: WorkerContext,
        *,
        order: PrioritySampler[Registration],
        inbox: Inbox,
        slots: Sequence[str],
        make: Callable[[Run, Job, str], S],
        launch: Callable[[list[S]], list[S]],
    ) -> None:
        self._context = context
        self._order = order
        self._inbox = inbox
        self._make = make
        self._launch = launch
        self._free_slots = _Slots(slots)
        self._running: dict[str, S] = {}
        self._idle = threading.Condition()
        self._fetch_order = itertools.count()
        self._name = name
        self._dispatchers: list[Dispatcher] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the dispatch threads, each with a connection of its own."""
        for n in range(DISPATCH_THREADS):
            dispatcher = Dispatcher(f"{self._name} dispatcher {n}", self._context)
            thread = threading.Thread(
                target=self._dispatch, args=(dispatcher,), name=f"workq-{self._name}-dispatcher-{n}", daemon=True
            )
            self._dispatchers.append(dispatcher)
            self._threads.append(thread)
            thread.start()

    # --- what executors call -------------------------------------------------------------------------------

    def end(self, started: S, outcome: BaseException | None, filed: bool = False) -> None:
        """The run ended: file it with the next round trip (its slot is then fetched for again). A
        KeyboardInterrupt or SystemExit stops the pool at once (nothing more is fetched)."""
        started.ended = True
        if isinstance(outcome, STOPPING_OUTCOMES):
            self._context.stopping.set()
        self._inbox.put(Ended(started, outcome, filed))

    def later(self, work: Callable[[Dispatcher], object]) -> None:
        """Run `work` on a dispatch thread (Redis work the executor must not wait for)."""
        self._inbox.put(work)

    def held(self) -> list[S]:
        """Every job fetched for a slot and not acknowledged yet."""
        with self._idle:
            return list(self._running.values())

    def running(self) -> list[S]:
        """The jobs handed to a slot whose run has not ended (nor been handed back)."""
        return [started for started in self.held() if not (started.ended or started.handed_back)]

    def held_payloads(self) -> Counter[bytes]:
        with self._idle:
            return Counter(started.run.payload for started in self._running.values())

    def held_leases(self) -> set[bytes]:
        with self._idle:
            return {started.run.lease for started in self._running.values() if started.run.lease}

    @property
    def fetching(self) -> bool:
        return any(dispatcher.fetching for dispatcher in self._dispatchers)

    def stop_fetching(self) -> None:
        """The pool is stopping (its `stopping` event is set): wake the dispatch threads if they wait."""
        self._inbox.notify()

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait for every run to be acknowledged; False if some are still held after `timeout` seconds."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._running, timeout)

    def hand_back(self, handed: Sequence[S], release: bool) -> None:
        """Put these jobs back on their queues, in one call, last fetched first (the first ends up at the front):
        jobs never started (`release`: their slots and counts are given back now), or runs that outlived the stop
        grace (released when they end, if ever)."""
        handed = self._marked_handed_back(handed)
        if handed:
            self._inbox.put(lambda dispatcher: self._send_back(dispatcher, handed, release))

    def _marked_handed_back(self, handed: Sequence[S]) -> list[S]:
        """Those of `handed` not handed back yet, now marked so, last fetched first."""
        with self._idle:
            handed = sorted((started for started in handed if not started.handed_back), key=lambda s: -s.fetched)
            for started in handed:
                started.handed_back = True
        return handed

    def _send_back(self, dispatcher: Dispatcher, handed: list[S], release: bool) -> None:
        try:
            dispatcher.acknowledge_many([(started.run, started.run.hand_back()) for started in handed])
        finally:
            for started in handed:
                if release:
                    self._release(started)
                else:
                    self._context.observer.done(started.slot)
            if release:
                self._free_slots.give_back([started.slot for started in handed])

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
        try:
            while not closing:
                can_fetch = bool(self._free_slots) and not idle and not stopping.is_set()
                mail = self._inbox.take(0 if can_fetch else (IDLE_POLL if idle else None), ACK_BATCH)
                if _CLOSE in mail:
                    closing = True
                    mail = mail[: mail.index(_CLOSE)]
                if idle and (not mail or _WAKE in mail):  # woken, or time for the idle poll
                    idle = False
                ended = [item for item in mail if isinstance(item, Ended)]
                # Fetch with every ack, idle or not: the runs that ended may have freed a max_concurrency cap.
                fetching = not stopping.is_set() and (not idle or bool(ended))
                most = min(FETCH_BATCH, 2 * last_fetched + 1) if fetching else 0
                slots = [end.started.slot for end in ended]  # theirs to reuse, or to give back
                if len(slots) < most:
                    slots += self._free_slots.reserve(most - len(slots))
                wanted = min(most, len(slots))
                fetched = self._exchange(dispatcher, ended, slots, wanted)
                if wanted:
                    idle, last_fetched = not fetched, fetched
                for item in mail:
                    if callable(item):
                        self._do(dispatcher, item)
        finally:
            dispatcher.close()

    def _exchange(self, dispatcher: Dispatcher, ended: list[Ended], slots: list[str], wanted: int) -> int:
        """File `ended` and fetch up to `wanted` jobs into `slots` in one round trip; hand the new jobs to their
        slots. Slots left over are free again. Returns how many jobs were fetched."""
        context = self._context
        for _ in range(wanted):
            context.in_flight.add()  # before the fetch: drain() must not miss a job on its way
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
            for end in ended:
                self._release(end.started)
        started = self._start(dispatcher, runs, slots)
        for _ in range(wanted - len(started)):
            context.in_flight.remove()
        return len(runs)

    def _start(self, dispatcher: Dispatcher, runs: list[Run], slots: list[str]) -> list[S]:
        """Begin each run in a slot of `slots` and hand them to the executor; the slots left over are free again."""
        started: list[S] = []
        try:
            for run in runs:
                slot = slots.pop()
                job = dispatcher.begin(run, slot)
                if isinstance(job, Finished):  # not a job: filed dead already
                    slots.append(slot)
                else:
                    started.append(self._make(run, job, slot))
        except Exception as exc:
            dispatcher.note_fault(exc)
        finally:
            if started:
                with self._idle:
                    for one in started:
                        one.fetched = next(self._fetch_order)
                        self._running[one.slot] = one
                refused = self._launch(started)
                if refused:
                    self._send_back(dispatcher, self._marked_handed_back(refused), release=True)
            self._free_slots.give_back(slots)
        return started

    def _release(self, started: Started) -> None:
        """The run is over and filed, or handed back (its slot goes on with the exchange that filed it)."""
        if started.released:
            return
        started.released = True
        self._context.observer.done(started.slot)
        with self._idle:
            if self._running.get(started.slot) is started:
                del self._running[started.slot]
            self._idle.notify_all()
        self._context.in_flight.remove()

    def _do(self, dispatcher: Dispatcher, work: Callable[[Dispatcher], object]) -> None:
        try:
            work(dispatcher)
        except Exception as exc:
            dispatcher.note_fault(exc)
