"""Fixtures for the reliability tests: worker subprocesses that never outlive their test, and a redis-server of the
test's own for tests that kill connections or restart Redis (never the shared one)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_servers import RedisServer
from reliability.harness import Fleet


@pytest.fixture
def handler_kind() -> str:
    """The kind of handler the fleet's workers run: "sync" unless a test parametrizes `handler_kind` ("async",
    "mixed": see `reliability.app.HANDLERS_ENV`)."""
    return "sync"


@pytest.fixture
def fleet(tmp_path: Path, namespace: str, handler_kind: str, request: pytest.FixtureRequest) -> Iterator[Fleet]:
    """Worker processes on the test's namespace; every one still running is killed at teardown, and their logs are
    printed when the test failed."""
    started = Fleet(tmp_path, namespace, handler_kind)
    yield started
    started.close()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(started.logs()[-20000:])


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server on a free loopback port, stopped at teardown whatever happened; missing redis-server fails
    under CI and skips elsewhere, like the shared Redis."""
    yield from _own_redis_server(RedisServer(tmp_path / "redis"))


@pytest.fixture
def stallable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """Like `private_redis`, and it accepts `DEBUG SLEEP` from loopback clients, to stall it."""
    yield from _own_redis_server(RedisServer(tmp_path / "redis", "--enable-debug-command", "local"))


def _own_redis_server(server: RedisServer) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed: the tests that kill connections or restart Redis need their own"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        server.start()
        yield server
    finally:
        server.stop()
