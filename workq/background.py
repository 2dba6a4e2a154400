"""One small base for the pool's periodic loops: interval with jitter, prompt stop, errors logged and survived."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from workq.connection import is_redis_fault

logger = logging.getLogger("workq")

MAX_ERROR_BACKOFF = 30.0


class BackgroundLoop:
    """Calls `tick` every `interval` seconds on a daemon thread until `stop()`.

    A failing tick never kills the loop: a Redis outage (see `is_redis_fault`) is logged as a warning once, and
    once more when it ends; anything else with its traceback, every time. The next try waits twice as long (up to
    `max_error_wait`, 30 s by default) until a tick succeeds again.
    """

    def __init__(
        self,
        name: str,
        interval: float,
        tick: Callable[[], object],
        *,
        jitter: float = 0.1,
        max_error_wait: float = MAX_ERROR_BACKOFF,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.interval = interval
        self._tick = tick
        self._jitter = jitter
        self._max_error_wait = max_error_wait
        self._rng = rng if rng is not None else random.Random()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"workq-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = 0.0
        failures = 0
        outage_since: float | None = None
        while not self._stopping.wait(delay):
            try:
                self._tick()
            except Exception as exc:
                failures += 1
                if not is_redis_fault(exc):
                    logger.exception("%s failed; retrying", self.name)
                elif outage_since is None:
                    outage_since = time.monotonic()
                    logger.warning("%s: Redis unavailable (%s); retrying", self.name, exc)
                else:
                    logger.debug("%s: Redis still unavailable (%s)", self.name, exc)
            else:
                failures = 0
                if outage_since is not None:
                    logger.info("%s: Redis available again after %.1f s", self.name, time.monotonic() - outage_since)
                    outage_since = None
            delay = self._next_delay(failures)

    def _next_delay(self, failures: int) -> float:
        if failures:
            return float(min(self._max_error_wait, self.interval * 2**failures))
        return self.interval * (1 + self._jitter * (2 * self._rng.random() - 1))
