"""Fixtures for the dashboard tests: an app on the test's namespace (real Redis), its test client, jobs placed in
every state, and worker pools that are always stopped."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from web.sample_jobs import CSRF, Placed, place_every_state
from workq import Client, Job, WorkerPool
from workq.web import create_app
from workq.web.security import LOOPBACK_HOSTS

PoolStarter = Callable[[dict[str, Callable[[Job], None]]], WorkerPool]


@pytest.fixture(autouse=True)
def no_token_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKQ_WEB_TOKEN", raising=False)


@pytest.fixture
def client(namespace: str, redis_client: redis.Redis) -> Client:
    return Client(namespace, redis_client)


@pytest.fixture
def app(client: Client) -> Flask:
    return create_app(client, csrf_token=CSRF, allowed_hosts=LOOPBACK_HOSTS)


@pytest.fixture
def web(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def placed(namespace: str, redis_client: redis.Redis) -> Placed:
    return place_every_state(redis_client, namespace)


@pytest.fixture
def release() -> threading.Event:
    """Set by a test to let blocked handlers finish; `start_pool` sets it before stopping its pools."""
    return threading.Event()


@pytest.fixture
def start_pool(namespace: str, redis_url: str, release: threading.Event) -> Iterator[PoolStarter]:
    """Start a pool running `{job name: handler}` on the test's namespace; every one is stopped at teardown."""
    pools: list[WorkerPool] = []

    def start(handlers: dict[str, Callable[[Job], None]]) -> WorkerPool:
        pool = WorkerPool(namespace, redis_url, concurrency=2, heartbeat_interval=0.5)
        for name, handler in handlers.items():
            pool.job(name, handler, max_fails=1)
        pools.append(pool)
        pool.start()
        return pool

    yield start
    release.set()
    for pool in pools:
        pool.stop()
        pool.redis.close()
