"""redis-servers of a test's own, on free loopback ports, keeping nothing on disk (a restart empties them)."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import redis

from support import wait_until

HOST = "127.0.0.1"
START_TIMEOUT = 15.0


FIRST_PORT = 20000
PORTS_PER_WORKER = 500
WORKER_SLOTS = 25
"""Ports 20000–32499, below Linux's ephemeral range (32768–60999): no client connection's local port is ever one of
them, so a port found free stays free until the server binds it. Each pytest-xdist worker (`PYTEST_XDIST_WORKER`,
gw0, gw1…) takes a range of its own, so two workers never pick the same port."""


def _worker_ports() -> Iterator[int]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    first = FIRST_PORT + (index % WORKER_SLOTS) * PORTS_PER_WORKER
    start = random.randrange(PORTS_PER_WORKER)  # another session on this machine most likely starts elsewhere
    while True:
        for offset in range(PORTS_PER_WORKER):
            yield first + (start + offset) % PORTS_PER_WORKER


_ports = _worker_ports()


def free_port() -> int:
    """A loopback port nobody listens on, from this worker's range, not handed out again for 500 calls (a server
    just stopped may leave connections in TIME_WAIT on its port)."""
    for _ in range(PORTS_PER_WORKER):
        port = next(_ports)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free loopback port in this worker's range ({PORTS_PER_WORKER} tried)")


class RedisProcess:
    """One redis-server (or Sentinel) process on `HOST:port`; its log is `<workdir>/redis.log`."""

    def __init__(
        self, workdir: Path, port: int, args: Sequence[str], *, client_options: dict[str, Any] | None = None
    ) -> None:
        self.workdir = workdir
        self.port = port
        self._args = list(args)
        self._client_options = client_options or {}
        """What an admin client needs to connect: TLS files, a password."""
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def client(self, **options: Any) -> redis.Redis:
        """A plain (non-cluster) client of this one process, as the admin (default) user."""
        return redis.Redis(host=HOST, port=self.port, **{"socket_timeout": 10, **self._client_options, **options})

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = (self.workdir / "redis.log").open("ab")
        self._process = subprocess.Popen(
            ["redis-server", *self._args], cwd=self.workdir, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_ready(self) -> None:
        probe = self.client(socket_connect_timeout=0.5)
        try:
            wait_until(lambda: self._answers(probe), timeout=START_TIMEOUT, what=f"redis-server on port {self.port}")
        finally:
            probe.close()

    def _answers(self, probe: redis.Redis) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise AssertionError(f"redis-server on port {self.port} exited:\n{self.log[-3000:]}")
        try:
            return bool(probe.ping())
        except redis.ConnectionError:
            return False

    @property
    def log(self) -> str:
        path = self.workdir / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        """kill -9: no shutdown, nothing flushed to clients or replicas."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)

    def stop(self) -> None:
        """SIGTERM (it saves nothing), SIGKILL if it lingers; safe to call when already stopped or never started."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None


def server_args(port: int, *extra: str) -> list[str]:
    return ["--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no", *extra]


class RedisServer(RedisProcess):
    """A plain redis-server on a free port, ready when `start()` returns; `extra_args` are more server options."""

    def __init__(self, workdir: Path, *extra_args: str) -> None:
        port = free_port()
        super().__init__(workdir, port, server_args(port, *extra_args))

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        super().start()
        self.wait_ready()
