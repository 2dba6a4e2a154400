"""`workq worker --processes N`: N worker processes under one supervisor, so CPU-bound handlers use every core.

Children are fresh interpreters (`python -m workq worker ... --processes 1`) in their own process group: a
terminal's Ctrl-C reaches only the supervisor, which forwards it once. A child that dies while the supervisor
is not stopping is restarted (after a pause that grows while it keeps crashing); the supervisor exits when every
child has stopped, with status 0 if all stopped cleanly.
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import threading
import time
from types import FrameType

from workq.cli.common import EXIT_FAILURE, EXIT_OK

logger = logging.getLogger("workq")

RESTART_WAITS = (1.0, 2.0, 5.0, 10.0, 30.0)
STABLE_AFTER = 60.0
"""A child that ran this long before dying is restarted at once: it was not crash-looping."""


def child_argv(args: argparse.Namespace) -> list[str]:
    """The command line of one child: the same worker, one process."""
    argv = [
        sys.executable,
        "-m",
        "workq",
        "worker",
        args.target,
        "--processes",
        "1",
        "--grace",
        str(args.grace),
        "--log-level",
        args.log_level,
    ]
    for flag, value in (
        ("--redis-url", args.redis_url),
        ("--namespace", args.namespace),
        ("--concurrency", args.concurrency),
    ):
        if value is not None:
            argv += [flag, str(value)]
    return argv


class Supervisor:
    def __init__(self, argv: list[str], processes: int) -> None:
        self._argv = argv
        self._children: list[subprocess.Popen[bytes] | None] = [None] * processes
        self._started_at = [0.0] * processes
        self._crashes = [0] * processes
        self._stopping = threading.Event()
        self._signals = 0

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        for slot in range(len(self._children)):
            self._spawn(slot)
        logger.info("supervisor: %d worker processes started", len(self._children))
        while not self._stopping.is_set():
            for slot, child in enumerate(self._children):
                if child is not None and child.poll() is not None and not self._stopping.is_set():
                    self._restart(slot, child.returncode)
            self._stopping.wait(0.5)
        codes = [child.wait() for child in self._children if child is not None]
        logger.info("supervisor: all worker processes stopped (exit statuses %s)", codes)
        return EXIT_OK if all(code == 0 for code in codes) else EXIT_FAILURE

    def _spawn(self, slot: int) -> None:
        self._children[slot] = subprocess.Popen(self._argv, start_new_session=True)
        self._started_at[slot] = time.monotonic()

    def _restart(self, slot: int, returncode: int) -> None:
        ran_for = time.monotonic() - self._started_at[slot]
        self._crashes[slot] = 0 if ran_for >= STABLE_AFTER else self._crashes[slot] + 1
        wait = 0.0 if self._crashes[slot] == 0 else RESTART_WAITS[min(self._crashes[slot], len(RESTART_WAITS)) - 1]
        logger.warning(
            "supervisor: worker process %d exited with status %s after %.0f s; restarting in %.0f s",
            slot,
            returncode,
            ran_for,
            wait,
        )
        if not self._stopping.wait(wait):
            self._spawn(slot)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        """Forward each signal to every child: the first stops them gracefully, the second at once."""
        self._signals += 1
        self._stopping.set()
        logger.info("supervisor: received %s; forwarding to worker processes", signal.Signals(signum).name)
        for child in self._children:
            if child is not None and child.poll() is None:
                child.send_signal(signum)
