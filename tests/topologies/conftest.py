"""Fixtures for the topology tests: each topology is started once per module on free loopback ports and always
stopped; in-process pools are always stopped; subprocess workers are always killed, their logs printed when the
test failed."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from topologies.servers import (
    Certificates,
    Cluster,
    RedisProcess,
    SentinelGroup,
    WorkerCommand,
    make_certificates,
    plain_server,
    tls_server,
)
from workq import WorkerPool

PoolMaker = Callable[..., WorkerPool]
WorkerStarter = Callable[..., WorkerCommand]


@pytest.fixture(scope="session", autouse=True)
def redis_binaries() -> None:
    for binary in ("redis-server", "redis-cli", "openssl"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        started.start()
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def sentinel_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    """After the failover test the group carries on with the promoted replica as its master (and no replica)."""
    started = SentinelGroup(tmp_path_factory.mktemp("sentinel"))
    try:
        started.start()
        yield started
    finally:
        started.stop()


@pytest.fixture
def tally_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A plain redis-server where subprocess handlers count their runs, outside the topology under test."""
    server = plain_server(tmp_path / "tally")
    try:
        server.start()
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certificates"))


def _started(server: RedisProcess) -> Iterator[RedisProcess]:
    try:
        server.start()
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tls_only_server(tmp_path_factory: pytest.TempPathFactory, certificates: Certificates) -> Iterator[RedisProcess]:
    """TLS on its only port; clients need no certificate of their own."""
    yield from _started(tls_server(tmp_path_factory.mktemp("tls"), certificates))


@pytest.fixture(scope="module")
def mutual_tls_server(tmp_path_factory: pytest.TempPathFactory, certificates: Certificates) -> Iterator[RedisProcess]:
    """TLS on its only port; clients must present a certificate signed by the test CA."""
    yield from _started(tls_server(tmp_path_factory.mktemp("mtls"), certificates, client_certificates=True))


@pytest.fixture
def make_pool() -> Iterator[PoolMaker]:
    """`WorkerPool(*args, **kwargs)`; every pool made is stopped (and its client closed) at teardown."""
    pools: list[WorkerPool] = []

    def make(*args: Any, **kwargs: Any) -> WorkerPool:
        pool = WorkerPool(*args, **kwargs)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.request_stop()
    for pool in pools:
        pool.stop(grace=10)
        pool.redis.close()


@pytest.fixture
def start_worker(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[WorkerStarter]:
    """`WorkerCommand(...)` subprocesses, killed at teardown; their logs are printed if the test failed."""
    workers: list[WorkerCommand] = []

    def start(target: str, *args: str, env: dict[str, str] | None = None) -> WorkerCommand:
        worker = WorkerCommand(tmp_path / f"worker-{len(workers)}.log", target, *args, env=env)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.close()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for worker in workers:
            print(f"--- {worker.log_path.name}\n{worker.log[-10000:]}")
