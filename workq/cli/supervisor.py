"""`workq worker --processes N`: N worker processes under one supervisor, so CPU-bound handlers use every core.

Children are fresh interpreters (`python -m workq worker ... --processes 1`) in their own process group: a
terminal's Ctrl-C reaches only the supervisor, which forwards it once. A child that dies while the supervisor
is not stopping is restarted (after a pause that grows while it keeps crashing); the supervisor exits when every
child has stopped, with status 0 if all stopped cleanly.

Children never outlive their supervisor, even one killed with SIGKILL: each holds the read end of a pipe (the
lifeline) whose write end only the supervisor holds, so its death is an end of file to them; on Linux the kernel
also sends them SIGHUP (a parent-death signal). Either way a child stops as on its first SIGTERM: running jobs
get the grace period, then the pool deregisters.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

from workq.cli.child_health import REPORT_FD_OPTION, ChildHealth
from workq.cli.common import EXIT_FAILURE, EXIT_OK
from workq.log_format import CHILD_INDEX_ENV

logger = logging.getLogger("workq")

RESTART_WAITS = (1.0, 2.0, 5.0, 10.0, 30.0)
STABLE_AFTER = 60.0
"""A child that ran this long before dying is restarted at once: it was not crash-looping."""
SUPERVISOR_FD_OPTION = "--supervisor-fd"
"""How a child learns the lifeline's read end (a hidden option of `workq worker`)."""
SUPERVISOR_GONE_SIGNAL = signal.SIGHUP
"""The parent-death signal children ask the Linux kernel for: SIGHUP, not SIGTERM, so that it never counts as a
second SIGTERM (which means "exit at once")."""
_PR_SET_PDEATHSIG = 1
RETIRE_MARGIN = 10.0
"""Seconds past its grace a replaced child has to exit before it is killed."""


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
        "--log-format",
        args.log_format,
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
    """Runs `processes` children of `argv` until a stop signal, restarting the ones that die meanwhile.

    The signal handler only records a signal; the main loop forwards it, so a child spawned as the signal lands
    gets it too, and nothing that takes a lock runs inside the handler.
    """

    def __init__(self, argv: list[str], processes: int, *, grace: float, pin_cpus: bool = False) -> None:
        self._argv = argv
        self._grace = grace
        self._cpus = sorted(os.sched_getaffinity(0)) if pin_cpus else []
        """With `pin_cpus`: the CPUs this process may use; the child of slot i runs on the i-th (round robin)."""
        self._children: list[subprocess.Popen[bytes] | None] = [None] * processes
        self._health = ChildHealth(processes)
        self._retiring: list[tuple[subprocess.Popen[bytes], float]] = []
        """Replaced children still stopping, with when they get killed."""
        self._started_at = [0.0] * processes
        self._crashes = [0] * processes
        self._forwarded = [0] * processes
        """How many of the received signals each slot's current child has been sent."""
        self._received: list[int] = []
        self._announced = 0
        self._lifeline_read, self._lifeline_write = os.pipe()  # neither end is inherited unless passed
        self._wakeup_read, self._wakeup_write = os.pipe()
        """`signal.set_wakeup_fd` writes here as a signal arrives, ending the main loop's wait at once."""

    def run(self) -> int:
        for fd in (self._wakeup_read, self._wakeup_write):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self._wakeup_write)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        for slot in range(len(self._children)):
            if not self._received:
                self._spawn(slot)
        logger.info("supervisor: %d worker processes started", len(self._children))
        while not self._received:
            for slot, child in enumerate(self._children):
                if child is not None and child.poll() is not None and not self._received:
                    self._restart(slot, child.returncode)
            for slot, why in self._health.unhealthy():
                if not self._received:
                    self._replace(slot, why)
            self._retire()
            self._wait_for_signal(0.5)
        codes = self._stop_children()
        logger.info("supervisor: all worker processes stopped (exit statuses %s)", codes)
        stopped_as_asked = {0} | {-signum for signum in self._received}  # a child too young to handle the signal
        return EXIT_OK if all(code in stopped_as_asked for code in codes) else EXIT_FAILURE

    def _spawn(self, slot: int) -> None:
        report_fd = self._health.open(slot)
        argv = [*self._argv, SUPERVISOR_FD_OPTION, str(self._lifeline_read), REPORT_FD_OPTION, str(report_fd)]
        self._forwarded[slot] = 0
        env = {**os.environ, CHILD_INDEX_ENV: str(slot)}
        try:
            self._children[slot] = subprocess.Popen(
                argv, start_new_session=True, pass_fds=(self._lifeline_read, report_fd), env=env
            )
        finally:
            os.close(report_fd)
        if self._cpus:
            self._pin(slot)
        self._started_at[slot] = time.monotonic()

    def _pin(self, slot: int) -> None:
        """Run the slot's child on one CPU: a CPython process runs Python on one core at a time, and its threads'
        GIL hand-offs cost up to twice the CPU per job when they cross cores."""
        child = self._children[slot]
        if child is None:
            return
        try:
            os.sched_setaffinity(child.pid, {self._cpus[slot % len(self._cpus)]})
        except OSError as exc:  # the child died at once: its exit is handled as any other
            logger.warning("could not pin worker process %d to a CPU: %s", child.pid, exc)

    def _replace(self, slot: int, why: str) -> None:
        """The hard limit: start a new child in `slot` now; the old one stops gracefully (its other jobs get the
        grace period) and is killed if it has not exited `RETIRE_MARGIN` s after it — at once if it is silent."""
        child = self._children[slot]
        if child is None or child.poll() is not None:
            return
        silent = "no report" in why
        logger.error("supervisor: worker process %d (pid %d) %s: replacing it", slot, child.pid, why)
        if silent:
            child.kill()
        else:
            child.send_signal(signal.SIGTERM)
        self._retiring.append((child, time.monotonic() + self._grace + RETIRE_MARGIN))
        self._spawn(slot)

    def _retire(self) -> None:
        """Forget replaced children that exited; kill the ones past their deadline."""
        still = []
        for child, kill_at in self._retiring:
            if child.poll() is not None:
                continue
            if time.monotonic() >= kill_at:
                logger.error("supervisor: replaced worker process (pid %d) did not exit: killing it", child.pid)
                child.kill()
            still.append((child, kill_at))
        self._retiring = still

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
        restart_at = time.monotonic() + wait
        while not self._received and time.monotonic() < restart_at:
            self._wait_for_signal(restart_at - time.monotonic())
        if not self._received:
            self._spawn(slot)

    def _stop_children(self) -> list[int]:
        """Forward every signal received to every child until all have exited; returns their exit statuses."""
        while True:
            self._forward_signals()
            self._retire()
            if not self._retiring and all(child is None or child.poll() is not None for child in self._children):
                return [child.returncode for child in self._children if child is not None]
            self._wait_for_signal(0.1)

    def _forward_signals(self) -> None:
        """The first signal stops a child gracefully, the second at once; each child gets each signal once."""
        for signum in self._received[self._announced :]:
            logger.info("supervisor: received %s; forwarding to worker processes", signal.Signals(signum).name)
        self._announced = len(self._received)
        for slot, child in enumerate(self._children):
            if child is not None and child.poll() is None:
                for signum in self._received[self._forwarded[slot] :]:
                    child.send_signal(signum)
            self._forwarded[slot] = len(self._received)

    def _wait_for_signal(self, seconds: float) -> None:
        """Wait until a signal, a child's health report, or `seconds` (reports are read by the main loop)."""
        if self._wakeup_read in select.select([self._wakeup_read, *self._health.fds], [], [], max(0.0, seconds))[0]:
            os.read(self._wakeup_read, 512)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._received.append(signum)


def follow_supervisor(lifeline_fd: int, stop: Callable[[], None]) -> None:
    """In a child: call `stop` (from another thread or a signal handler) once the supervisor is gone — the
    lifeline's end of file, or on Linux the parent-death signal. Call it after the pool started."""
    supervisor_pid = os.getppid()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop()

    def watch() -> None:
        try:
            while os.read(lifeline_fd, 1):  # the supervisor never writes: this returns b"" when it is gone
                pass
        except OSError as exc:
            logger.error("cannot watch the supervisor (fd %d: %s); this process will outlive it", lifeline_fd, exc)
            return
        logger.warning("supervisor (pid %d) is gone: stopping", supervisor_pid)
        stop()

    if sys.platform == "linux":
        signal.signal(SUPERVISOR_GONE_SIGNAL, on_signal)
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, SUPERVISOR_GONE_SIGNAL, 0, 0, 0) != 0:
            logger.debug("prctl(PR_SET_PDEATHSIG) failed (errno %d); the lifeline alone watches", ctypes.get_errno())
    threading.Thread(target=watch, name="workq-supervisor-lifeline", daemon=True).start()
