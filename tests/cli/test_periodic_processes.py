"""Cron across processes: several `workq worker`s on one namespace enqueue each tick exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import redis

from support import wait_until

APP_DIR = Path(__file__).parent
PROCESSES = 3
TICKS = 4


def test_every_second_with_three_worker_processes_runs_each_tick_once_without_gaps(
    redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workq",
                "worker",
                "periodic_app:pool",
                "--redis-url",
                redis_url,
                "--namespace",
                namespace,
                "--log-level",
                "WARNING",
            ],
            cwd=APP_DIR,
        )
        for _ in range(PROCESSES)
    ]
    ticks_key = f"{namespace}:test:ticks"
    try:
        wait_until(lambda: redis_client.llen(ticks_key) >= TICKS + 2, timeout=30, what=f"{TICKS + 2} ticks")
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(timeout=30) for worker in workers]
    assert codes == [0] * PROCESSES
    ran = Counter(job_id.decode() for job_id in redis_client.lrange(ticks_key, 0, -1))
    assert all(count == 1 for count in ran.values()), f"ticks run more than once: {ran}"
    fire_times = sorted(int(job_id.rsplit(":", 1)[1]) for job_id in ran)
    assert fire_times == list(range(fire_times[0], fire_times[0] + len(fire_times))), f"gaps in {fire_times}"
    assert all(job_id.startswith("periodic:tick:* * * * * *:") for job_id in ran)
