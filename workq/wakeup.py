"""Where idle workers wait: woken early when jobs may have arrived or the pool stops, instead of polling fast."""

from __future__ import annotations

import threading


class Wakeup:
    """A broadcast: `notify()` ends every `wait()` in progress; a `wait()` begun later waits afresh."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds; True if notified."""
        with self._condition:
            generation = self._generation
            return self._condition.wait_for(lambda: self._generation != generation, timeout)

    def notify(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()
