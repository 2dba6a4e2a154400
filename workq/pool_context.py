"""What every executor of one started pool shares: its Redis and keys, its registrations, the stop event, the
in-flight count `drain()` reads."""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from workq.clock import Clock
from workq.complaints import Complaints
from workq.connection import RedisClient
from workq.heartbeat import Observer
from workq.keys import Keys
from workq.registration import Registration
from workq.run import Outcomes
from workq.scripts import Scripts
from workq.time_limits import Watchdog
from workq.wakeup import WakeSignal


class InFlight:
    """Counts runs between the start of a fetch and the end of its ack, so `drain()` cannot miss a job."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self.add()

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def add(self, count: int = 1) -> None:
        with self._lock:
            self._count += count

    def remove(self, count: int = 1) -> None:
        with self._lock:
            self._count -= count

    @property
    def count(self) -> int:
        return self._count


@dataclass(frozen=True)
class WorkerContext:
    """What every executor of one pool shares."""

    client: RedisClient
    keys: Keys
    scripts: Scripts
    pool_id: str
    registrations: Mapping[str, Registration]
    clock: Clock
    rng: random.Random
    fetch_keys: Mapping[str, tuple[str, ...]]
    stopping: threading.Event
    wake_signal: WakeSignal
    in_flight: InFlight
    observer: Observer
    complaints: Complaints
    outcomes: Outcomes
    watchdog: Watchdog
    """Time limits and cancels of the runs of thread workers (the asyncio runner keeps its own, on the loop)."""
