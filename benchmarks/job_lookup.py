"""What finding a job by id costs on a long queue: `Client.job_status`, `cancel` and `purge` on a 1,000,000-job
queue, timed from the client, with the longest single Redis command each one sent (SLOWLOG on a private
redis-server with every command logged), so no other client of that server is blocked for long.

    python -m benchmarks.job_lookup [--jobs 1000000]

Starts its own `redis-server` on a free loopback port (nothing on disk) and stops it at the end.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import redis

from benchmarks.redis_server import private_redis
from workq import Client, Job

NAMESPACE = "{bench}"
JOB_NAME = "work"
FILL_BATCH = 10_000
IGNORED_COMMANDS = {b"SLOWLOG", b"CONFIG"}


@dataclass(frozen=True)
class Measurement:
    what: str
    seconds: float
    commands: int
    median_command_ms: float
    p99_command_ms: float
    longest_command_ms: float
    longest_command: str
    server_ms: float
    """Sum of the time Redis spent on the commands sent."""


@contextmanager
def slowlogged_redis() -> Iterator[redis.Redis]:
    """A client of a private redis-server whose slowlog keeps every command (what `measure` reads)."""
    with private_redis() as url:
        client = redis.Redis.from_url(url, socket_timeout=60)
        try:
            client.config_set("slowlog-log-slower-than", 0)
            client.config_set("slowlog-max-len", 1_000_000)
            yield client
        finally:
            client.close()


def fill(client: redis.Redis, queue: str, count: int) -> list[Job]:
    """`count` jobs of about 100 bytes, pushed as enqueue does (LPUSH): the first one is next to run."""
    jobs = [
        Job(name=JOB_NAME, enqueued_at=1_800_000_000 + n, args={"n": n, "to": f"user{n}@example.com"})
        for n in range(count)
    ]
    for start in range(0, count, FILL_BATCH):
        client.lpush(queue, *(job.to_json() for job in jobs[start : start + FILL_BATCH]))
    client.sadd(f"{NAMESPACE}:known_jobs", JOB_NAME)
    return jobs


def measure(client: redis.Redis, what: str, action: Callable[[], Any]) -> tuple[Measurement, Any]:
    client.slowlog_reset()
    began = time.perf_counter()
    outcome = action()
    seconds = time.perf_counter() - began
    entries = [
        entry
        for entry in client.slowlog_get(1_000_000)
        if entry["command"].split(b" ", 1)[0].upper() not in IGNORED_COMMANDS
    ]
    longest = max(entries, key=lambda entry: entry["duration"])
    durations = sorted(entry["duration"] / 1000 for entry in entries)
    return (
        Measurement(
            what=what,
            seconds=round(seconds, 3),
            commands=len(entries),
            median_command_ms=durations[len(durations) // 2],
            p99_command_ms=durations[min(len(durations) - 1, int(len(durations) * 0.99))],
            longest_command_ms=longest["duration"] / 1000,
            longest_command=longest["command"][:60].decode(errors="replace"),
            server_ms=round(sum(entry["duration"] for entry in entries) / 1000, 1),
        ),
        outcome,
    )


def run(count: int) -> list[Measurement]:
    results = []
    with slowlogged_redis() as server:
        client = Client(NAMESPACE, server)
        queue = client.keys.queue(JOB_NAME)
        jobs = fill(server, queue, count)
        next_to_run, quarter, middle, newest = jobs[0], jobs[count // 4], jobs[count // 2], jobs[-1]
        for what, action in (
            ("one LRANGE 0 -1 of the whole queue (what paging avoids)", lambda: len(server.lrange(queue, 0, -1))),
            ("job_status: job at the far end (next to run)", lambda: client.job_status(next_to_run.id)),
            ("job_status: newest job (first page)", lambda: client.job_status(newest.id)),
            ("job_status: unknown id (two passes)", lambda: client.job_status("no-such-job")),
            ("cancel: job at the far end (next to run)", lambda: client.cancel(next_to_run.id)),
            ("cancel: job a quarter of the way in", lambda: client.cancel(quarter.id)),
            ("cancel: job in the middle", lambda: client.cancel(middle.id)),
            ("job_status: cancelled job (its record)", lambda: client.job_status(middle.id)),
            ("purge: the rest of the queue", lambda: client.purge(JOB_NAME)),
        ):
            measurement, outcome = measure(server, what, action)
            results.append(measurement)
            print(
                f"{measurement.what}: {measurement.seconds:.3f} s, {measurement.commands} commands, median "
                f"{measurement.median_command_ms:.2f} ms, p99 {measurement.p99_command_ms:.2f} ms, longest "
                f"{measurement.longest_command_ms:.2f} ms ({measurement.longest_command!r}), Redis busy "
                f"{measurement.server_ms:.1f} ms in all -> {str(outcome)[:40]!r}",
                flush=True,
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true", help="print the results as JSON at the end")
    args = parser.parse_args()
    results = run(args.jobs)
    if args.json:
        print(json.dumps([asdict(result) for result in results], indent=2))


if __name__ == "__main__":
    main()
