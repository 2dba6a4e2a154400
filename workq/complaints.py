"""Logging a persistent problem once a minute, not once per pass: a key of the wrong type, a garbage member."""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger("workq")


class Complaints:
    """Remembers when each problem (keyed by what it is about) was last logged, and logs it again only after
    `every` seconds, so a corrupt key that every pass trips over costs one log line a minute."""

    def __init__(self, every: float = 60.0) -> None:
        self._every = every
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def report(self, about: str, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(about, -self._every) < self._every:
                return
            self._last[about] = now
        logger.error(message, *args)

    def wrong_type(self, key: str, consequence: str) -> None:
        """`key` holds the wrong type of value (WRONGTYPE); say what workq does about it until it is repaired."""
        self.report(key, "%s holds the wrong type of value (WRONGTYPE); %s until it is repaired", key, consequence)
