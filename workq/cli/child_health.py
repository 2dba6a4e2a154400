"""The hard limit of `workq worker --processes`: each child reports its health to the supervisor over a pipe of its
own, once a second — "." while well, "!" while it holds a run abandoned past its time limit (a C call that does not
give control back). The supervisor replaces a child that reports "!", and kills and replaces one silent for
`SILENT_LIMIT` seconds (a C call holding the GIL stops every thread of the process, the reporter's too)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

logger = logging.getLogger("workq")

REPORT_FD_OPTION = "--supervisor-report-fd"
"""How a child learns the write end of its health pipe (a hidden option of `workq worker`)."""
REPORT_INTERVAL = 1.0
SILENT_LIMIT = 30.0
WELL, STUCK = b".", b"!"


def report_health(report_fd: int, stuck_runs: Callable[[], int]) -> None:
    """In a child: report to the supervisor every second until it is gone (a broken pipe ends the reports)."""

    def report() -> None:
        while True:
            try:
                os.write(report_fd, STUCK if stuck_runs() else WELL)
            except OSError:
                return
            time.sleep(REPORT_INTERVAL)

    threading.Thread(target=report, name="workq-health-report", daemon=True).start()


class ChildHealth:
    """The supervisor's side: one pipe per child slot, and what the last reports say."""

    def __init__(self, slots: int, *, silent_limit: float = SILENT_LIMIT) -> None:
        self._read_fds: list[int | None] = [None] * slots
        self._heard_at = [0.0] * slots
        self._silent_limit = silent_limit

    def open(self, slot: int) -> int:
        """A new pipe for the child about to start in `slot`; returns the write end to pass it (close it after)."""
        self.close(slot)
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        self._read_fds[slot] = read_fd
        self._heard_at[slot] = time.monotonic()
        return write_fd

    def close(self, slot: int) -> None:
        read_fd = self._read_fds[slot]
        if read_fd is not None:
            os.close(read_fd)
            self._read_fds[slot] = None

    @property
    def fds(self) -> list[int]:
        """What the supervisor's wait also selects on, so a report of a stuck run is acted on at once."""
        return [fd for fd in self._read_fds if fd is not None]

    def unhealthy(self) -> list[tuple[int, str]]:
        """(slot, why) for each child to replace: one that reported a stuck run, or fell silent."""
        found = []
        now = time.monotonic()
        for slot, read_fd in enumerate(self._read_fds):
            if read_fd is None:
                continue
            try:
                reports = os.read(read_fd, 4096)
            except BlockingIOError:
                reports = b""
            if reports:
                self._heard_at[slot] = now
            if STUCK in reports:
                found.append((slot, "holds a run stuck past its time limit"))
            elif now - self._heard_at[slot] > self._silent_limit:
                found.append((slot, f"sent no report for {self._silent_limit:g} s (stuck with the GIL held?)"))
        return found
