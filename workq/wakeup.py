"""Waking idle workers: in-process, and across processes through a pub/sub message enqueuers send.

An idle pool marks each of its job names as waited for (`<ns>:jobs:<name>:waiting`, with an expiry) just before
its last look at the queues; the first enqueue after that deletes the mark and publishes the name. So an idle
pool starts a new job within a round trip or two instead of its next poll, and a busy one costs no messages.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping

from redis.client import PubSub

from workq.connection import REDIS_FAULTS, RedisClient, is_redis_fault
from workq.keys import Keys

logger = logging.getLogger("workq")

WAITING_MARK_LIFETIME_MS = 10_000
RECONNECT_WAIT = 1.0


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
    """The Redis side: marks this pool's job names as waited for, and listens for enqueuers naming one; a name
    wakes the waiters of the executor that runs it (`wakeups`: job name → its executor's Wakeup)."""

    def __init__(self, client: RedisClient, keys: Keys, wakeups: Mapping[str, Wakeup]) -> None:
        self._client = client
        self._keys = keys
        self._job_names = frozenset(wakeups)
        self._wakeups = dict(wakeups)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def mark_waiting(self) -> None:
        """Called by an idle worker before its last fetch: any enqueue from now on publishes."""
        pipe = self._client.pipeline(transaction=False)
        for name in self._job_names:
            pipe.set(self._keys.waiting(name), "1", px=WAITING_MARK_LIFETIME_MS)
        pipe.execute()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, name="workq-wake-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening; a message on the channel ends the listener's wait at once (else within a second)."""
        self._stopping.set()
        with contextlib.suppress(*REDIS_FAULTS):
            self._client.publish(self._keys.wake_channel, "")
        if self._thread is not None:
            self._thread.join()

    def _listen(self) -> None:
        """Subscribe and relay; on a dropped connection, log once, resubscribe, and wake everyone (messages sent
        meanwhile were lost)."""
        failing = False
        while not self._stopping.is_set():
            pubsub: PubSub | None = None
            try:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(self._keys.wake_channel)
                if failing:
                    logger.info("wake-up listener: subscribed again")
                    failing = False
                    for wakeup in set(self._wakeups.values()):
                        wakeup.notify()
                self._relay(pubsub)
            except Exception as exc:  # the listener outlives any failure: idle workers poll meanwhile
                if not failing:
                    if is_redis_fault(exc):
                        logger.warning("wake-up listener: Redis unavailable (%s); idle workers poll meanwhile", exc)
                    else:
                        logger.exception("wake-up listener failed; idle workers poll meanwhile")
                failing = True
                self._stopping.wait(RECONNECT_WAIT)
            finally:
                if pubsub is not None:
                    pubsub.close()

    def _relay(self, pubsub: PubSub) -> None:
        while not self._stopping.is_set():
            message = pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            data = message.get("data")
            name = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data)
            wakeup = self._wakeups.get(name)
            if wakeup is not None:
                wakeup.notify_one()
