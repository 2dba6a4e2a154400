"""Shared fixtures: a real Redis for integration tests, a fresh fakeredis server for unit tests, and a namespace
of its own for every test, whose keys are deleted afterwards."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Generator, Iterator

import fakeredis
import pytest
import redis

import figures

TEST_REDIS_URL = os.environ.get("WORKQ_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis the integration tests use; missing Redis fails under CI and skips elsewhere."""
    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        message = f"no Redis at {TEST_REDIS_URL} ({exc}); set WORKQ_TEST_REDIS_URL or start redis-server"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return TEST_REDIS_URL


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace no other test uses; every key under it is deleted when the test ends."""
    name = f"workq-test-{secrets.token_hex(6)}"
    yield name
    if "redis_url" in request.fixturenames:
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        keys = list(client.scan_iter(match=f"{name}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def fake_redis() -> fakeredis.FakeRedis:
    """A fakeredis client on a server of its own (a Lua global on a shared server would leak between tests)."""
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    """For a test that configures logging as `workq` does (`basicConfig(force=True)` on the root logger): afterwards
    the root logger has its level and handlers back, and none of the test's, so no later test logs into its stream."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield root
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item (`rep_call`…), so fixtures can print logs at teardown when the
    test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`--dist loadgroup`), the tests of a module sharing a module-scoped fixture run on one
    worker: its cluster, Sentinel group, browser or built wheel is made once, and its tests meet it in the order a
    serial run would (the Sentinel tests carry on after a failover). Session fixtures (a ping, a cached Go build)
    are cheap enough for each worker to make its own."""
    for item in items:
        fixture_info = getattr(item, "_fixtureinfo", None)
        if fixture_info is not None and any(
            definitions[-1].scope in {"module", "package"} for definitions in fixture_info.name2fixturedefs.values()
        ):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands its figure lines to the controller, which prints the terminal summary."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["figures"] = figures.SECTIONS


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    for section, lines in getattr(node, "workeroutput", {}).get("figures", {}).items():
        figures.SECTIONS.setdefault(section, []).extend(lines)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for section, lines in sorted(figures.SECTIONS.items()):
        terminalreporter.section(section)
        for line in lines:
            terminalreporter.write_line(line)
