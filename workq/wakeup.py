"""Waking idle workers: in-process, and across processes through a pub/sub message enqueuers send.

An idle pool marks each of its job names as waited for (`<ns>:jobs:<name>:waiting`, with an expiry) just before
its last look at the queues; the first enqueue after that deletes the mark and publishes the name. So an idle
pool starts a new job within a round trip or two instead of its next poll, and a busy one costs no messages. While
its mark stands (no wake-up came, no fetch found jobs, set less than `MARK_TRUSTED` s ago), a pool's empty fetch
is its last look: it marks again only once a wake-up or a job ended the idle spell the mark was set for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from workq.channel_listener import Channel
from workq.connection import RedisClient
from workq.keys import Keys

WAITING_MARK_LIFETIME_MS = 10_000
MARK_TRUSTED = WAITING_MARK_LIFETIME_MS / 2000
"""Seconds a pool relies on its mark standing: half its lifetime (the idle poll marks again well before it
expires)."""


class Wakeup:
    """Where idle workers wait. `notify_one()` wakes a single waiter (it wakes the next if it finds work);
    `notify()` wakes every waiter (stop, or many jobs made available at once)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0
        self._tickets = 0
        self._waiting = 0

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds; True if woken."""
        with self._condition:
            generation = self._generation
            self._waiting += 1
            try:
                woken = self._condition.wait_for(lambda: self._generation != generation or self._tickets > 0, timeout)
            finally:
                self._waiting -= 1
            if woken and self._generation == generation:
                self._tickets -= 1
            return woken

    def notify_one(self) -> None:
        with self._condition:
            if self._tickets < self._waiting:
                self._tickets += 1
                self._condition.notify(1)

    def notify(self) -> None:
        with self._condition:
            self._generation += 1
            self._tickets = 0
            self._condition.notify_all()


class WakeSignal:
    """The Redis side: marks this pool's job names as waited for, and relays enqueuers naming one (the pool's
    `ChannelListener` listens on `channel`) to the waiters of the executor that runs it (`wakeups`: job name → its
    executor's Wakeup)."""

    def __init__(
        self,
        client: RedisClient,
        keys: Keys,
        wakeups: Mapping[str, Wakeup],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._keys = keys
        self._job_names = frozenset(wakeups)
        self._wakeups = dict(wakeups)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._spells = 0
        """Idle spells ended (by a wake-up, or a fetch that found jobs): each ends the trust in the mark before it."""
        self._marked: tuple[float, int] | None = None
        """When the last mark was sent, and in which spell."""
        # Once subscribed again after a failure, wake everyone (idle workers polled meanwhile; wake-ups were lost).
        self.channel = Channel(keys.wake_channel, self._relay, on_resubscribed=self._wake_all)

    def mark_waiting(self) -> None:
        """Called by an idle worker before its last fetch: any enqueue from now on publishes."""
        with self._lock:
            marked = (self._monotonic(), self._spells)
        pipe = self._client.pipeline(transaction=False)
        for name in self._job_names:
            pipe.set(self._keys.waiting(name), "1", px=WAITING_MARK_LIFETIME_MS)
        pipe.execute()
        with self._lock:
            self._marked = marked

    def marked(self) -> bool:
        """True while the mark stands: set under `MARK_TRUSTED` s ago and no wake-up nor found job since (a wake-up
        relayed during the mark's own round trip counts: its enqueue may have deleted the mark). An enqueue then
        publishes, so an empty fetch needs no second look."""
        with self._lock:
            return (
                self._marked is not None
                and self._marked[1] == self._spells
                and self._monotonic() - self._marked[0] < MARK_TRUSTED
            )

    def found_jobs(self) -> None:
        """A fetch found jobs: the next empty one marks again (an enqueue may have deleted the mark with a wake-up
        this pool missed, not yet subscribed)."""
        self._end_spell()

    def _end_spell(self) -> None:
        with self._lock:
            self._spells += 1

    def _wake_all(self) -> None:
        self._end_spell()
        for wakeup in set(self._wakeups.values()):
            wakeup.notify()

    def _relay(self, name: str) -> None:
        wakeup = self._wakeups.get(name)
        if wakeup is not None:
            self._end_spell()
            wakeup.notify_one()
