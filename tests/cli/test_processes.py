"""`workq worker --processes N`: N pool processes under a supervisor that restarts the dead and stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from support import wait_until
from workq import Client, Enqueuer

APP_DIR = Path(__file__).parent


@pytest.fixture
def supervisor(redis_url: str, namespace: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workq",
            "worker",
            "worker_app:pool",
            "--processes",
            "2",
            "--redis-url",
            redis_url,
            "--namespace",
            namespace,
            "--log-level",
            "WARNING",
        ],
        cwd=APP_DIR,
    )
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGTERM)
    process.wait(30)


def test_two_processes_share_the_work_and_a_killed_one_is_replaced(
    supervisor: subprocess.Popen[bytes], redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    client = Client(namespace, redis_client)
    pools = wait_until(
        lambda: len(client.worker_pool_heartbeats()) == 2 and client.worker_pool_heartbeats(),
        what="two worker processes",
    )
    pids = {pool.pid for pool in pools}
    assert len(pids) == 2 and supervisor.pid not in pids

    jobs = Enqueuer(namespace, redis_url).enqueue_many("quick", [{"n": n} for n in range(200)])
    wait_until(
        lambda: all(redis_client.exists(f"{namespace}:test:finished:{job.id}") for job in jobs), what="every job to run"
    )

    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    wait_until(
        lambda: len({pool.pid for pool in client.worker_pool_heartbeats()} - pids) == 1,
        timeout=20,
        what="a replacement process",
    )

    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=30) == 0
    live = {pool.pid for pool in client.worker_pool_heartbeats()}
    assert live <= {victim}, "every child stopped cleanly (only the killed one's heartbeat may linger)"
