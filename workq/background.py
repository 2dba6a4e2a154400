"""One small base for the pool's periodic loops: interval with jitter, prompt stop, errors logged and survived."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

from workq.connection import REDIS_FAULTS

logger = logging.getLogger("workq")

MAX_ERROR_BACKOFF = 30.0


class BackgroundLoop:
    """Calls `tick` every `interval` seconds on a daemon thread until `stop()`.

    A failing tick never kills the loop: Redis faults are logged as warnings, anything else with its traceback,
    and the next try waits twice as long (up to `max_error_wait`, 30 s by default) until a tick succeeds again.
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
        while not self._stopping.wait(delay):
            try:
                self._tick()
            except REDIS_FAULTS as exc:
                failures += 1
                logger.warning("%s: Redis unavailable (%s); retrying", self.name, exc)
            except Exception:
                failures += 1
                logger.exception("%s failed; retrying", self.name)
            else:
                failures = 0
            delay = self._next_delay(failures)

    def _next_delay(self, failures: int) -> float:
        if failures:
            return float(min(self._max_error_wait, self.interval * 2**failures))
        return self.interval * (1 + self._jitter * (2 * self._rng.random() - 1))
