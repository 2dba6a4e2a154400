"""Fixtures for integration tests: pools on the test's namespace that are always stopped, an Enqueuer, a view of
the namespace's keys, and a `release` event that blocked handlers wait on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from integration.namespace_view import NamespaceView
from integration.pool_factory import PoolFactory, workq_threads
from workq import Enqueuer, WorkerPool


@pytest.fixture
def release() -> threading.Event:
    """Set by the test to let blocked handlers finish; `make_pool` sets it too before stopping its pools."""
    return threading.Event()


@pytest.fixture
def make_pool(namespace: str, redis_url: str, release: threading.Event) -> Iterator[PoolFactory]:
    """Build `WorkerPool(namespace, redis_url, concurrency=...)`s; at teardown every one is stopped and no workq
    thread may outlive it."""
    threads_before = workq_threads()
    pools: list[WorkerPool] = []

    def make(concurrency: int = 1, **options: Any) -> WorkerPool:
        pool = WorkerPool(namespace, redis_url, concurrency=concurrency, **options)
        pools.append(pool)
        return pool

    yield make
    release.set()
    for pool in pools:
        pool.request_stop()
    for pool in pools:
        pool.stop()
        pool.redis.close()
    leaked = workq_threads() - threads_before
    assert not leaked, f"threads left running after stop(): {sorted(thread.name for thread in leaked)}"


@pytest.fixture
def enqueuer(namespace: str, redis_client: redis.Redis) -> Enqueuer:
    return Enqueuer(namespace, redis_client)


@pytest.fixture
def view(namespace: str, redis_client: redis.Redis) -> NamespaceView:
    return NamespaceView(redis_client, namespace)
