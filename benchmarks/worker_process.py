"""A worker subprocess under measurement: its CPU time and memory read from /proc, for its whole process tree."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import IO

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants (Dramatiq's worker runs in a child of the process we start)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process, including its reaped children (RQ's forked work horses)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    utime, stime, cutime, cstime = (int(field) for field in fields[11:15])
    return (utime + stime + cutime + cstime) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    except OSError:
        return 0


class WorkerProcess:
    """One worker command, started in a session of its own; `stop()` ends it (and only it) however it behaves."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> None:
        self.command = command
        self._env = env
        self._cwd = cwd
        self.log_path = log_path
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("worker not started")
        return self._process.pid

    def start(self) -> WorkerProcess:
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self.command,
            cwd=self._cwd,
            env={**os.environ, **self._env},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in process_tree(self.pid))

    def rss_bytes(self) -> int:
        return sum(rss_bytes(pid) for pid in process_tree(self.pid))

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (every system measured stops gracefully on it), then SIGKILL to the session after `timeout`."""
        process = self._process
        if process is None:
            return
        tree = process_tree(process.pid)
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        for pid in tree[1:]:  # children that outlived their parent, if still in its session
            with contextlib.suppress(OSError):
                if os.getpgid(pid) == process.pid:
                    os.kill(pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
