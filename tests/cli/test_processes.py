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
        timeout=30,
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


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="CPU affinity is Linux-only")
def test_pinned_processes_each_run_on_one_cpu_in_turn(redis_url: str, namespace: str) -> None:
    """`--pin-cpus`: child i runs on the i-th CPU the supervisor may use (round robin), and still does the work."""
    cpus = sorted(os.sched_getaffinity(0))
    argv = ["worker", "worker_app:pool", "--processes", "2", "--pin-cpus", "--grace", "1", "--log-level", "WARNING"]
    process = subprocess.Popen(
        [sys.executable, "-m", "workq", *argv, "--redis-url", redis_url, "--namespace", namespace], cwd=APP_DIR
    )
    try:
        client = Client(namespace, redis_url)
        pools = wait_until(
            lambda: len(client.worker_pool_heartbeats()) == 2 and client.worker_pool_heartbeats(),
            timeout=30,
            what="two worker processes",
        )
        pinned = sorted(os.sched_getaffinity(pool.pid) for pool in pools)
        assert all(len(allowed) == 1 for allowed in pinned)
        assert sorted(cpu for allowed in pinned for cpu in allowed) == sorted(cpus[n % len(cpus)] for n in range(2))
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


def test_a_process_holding_a_run_stuck_past_its_time_limit_is_replaced(
    redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    """The hard limit: time.sleep(600) under a 1 s limit cannot be interrupted; the run is abandoned and counted
    (dead, max_fails=1) 5 s after its interrupt, and the supervisor replaces the process whose thread it holds."""
    workq_args = ["worker", "worker_app:pool", "--processes", "2", "--grace", "1", "--log-level", "WARNING"]
    workq_args += ["--redis-url", redis_url, "--namespace", namespace]
    process = subprocess.Popen([sys.executable, "-m", "workq", *workq_args], cwd=APP_DIR)
    try:
        client = Client(namespace, redis_client)
        wait_until(lambda: len(client.worker_pool_heartbeats()) == 2, timeout=30, what="two worker processes")
        job = Enqueuer(namespace, redis_url).enqueue("stuck_in_c", {})
        stuck_pid = int(
            wait_until(lambda: redis_client.get(f"{namespace}:test:started:{job.id}"), timeout=20, what="the run")
        )
        [dead] = wait_until(lambda: client.dead_jobs()[0], timeout=20, what="the abandoned run to be counted")
        assert dead.id == job.id and "timed out" in dead.last_err
        wait_until(lambda: not Path(f"/proc/{stuck_pid}").exists(), timeout=30, what="the stuck process to be gone")
        live = wait_until(
            lambda: (
                len(client.worker_pool_heartbeats()) == 2 and {pool.pid for pool in client.worker_pool_heartbeats()}
            ),
            timeout=30,
            what="a replacement process",
        )
        assert stuck_pid not in live
        quick = Enqueuer(namespace, redis_url).enqueue_many("quick", [{"n": n} for n in range(20)])
        wait_until(
            lambda: all(redis_client.exists(f"{namespace}:test:finished:{job.id}") for job in quick),
            timeout=20,
            what="the replaced fleet to work",
        )
    finally:
        process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
