"""Jobs for the dashboard tests, put straight into Redis as a worker or the enqueuer would leave them, carrying
arguments and errors that are markup, so every page can be checked for escaping."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis

from workq import DeadJob, Enqueuer, Job, RetryJob, ScheduledJob

CSRF = "test-csrf-token"
SCRIPT = "<script>alert(1)</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
HOSTILE_ARGS: dict[str, Any] = {"note": SCRIPT, "quote": "\"'&", "nested": {"html": "<img src=x onerror=alert(2)>"}}


@dataclass(frozen=True)
class Placed:
    """One job in each state, all carrying HOSTILE_ARGS; `hostile_name` is a queue whose very name is a tag."""

    now: int
    queued: Job
    hostile_name: Job
    scheduled: ScheduledJob
    retry: RetryJob
    dead: DeadJob


def file_job(redis_client: redis.Redis, namespace: str, zset: str, job: Job, score: int) -> None:
    """Put `job` in the `retry`, `dead` or `scheduled` sorted set."""
    redis_client.zadd(f"{namespace}:{zset}", {job.to_json(): score})


def failed_job(name: str, now: int, fails: int, args: dict[str, Any] | None = None) -> Job:
    """A job that failed `fails` times, the last 5 s before `now`, with an error that holds markup."""
    return Job(
        name=name,
        enqueued_at=now - 300,
        args=dict(HOSTILE_ARGS if args is None else args),
        fails=fails,
        last_err=f"RuntimeError: smtp said {SCRIPT}",
        failed_at=now - 5,
    )


def place_every_state(redis_client: redis.Redis, namespace: str) -> Placed:
    now = int(time.time())
    enqueuer = Enqueuer(namespace, redis_client)
    queued = enqueuer.enqueue("email", HOSTILE_ARGS)
    hostile_name = enqueuer.enqueue(SCRIPT, {"n": 1})
    scheduled = enqueuer.enqueue_in("report", 3600, HOSTILE_ARGS)
    retry = failed_job("email", now, fails=1)
    file_job(redis_client, namespace, "retry", retry, now + 120)
    dead = failed_job("email", now, fails=4)
    file_job(redis_client, namespace, "dead", dead, now - 5)
    return Placed(
        now=now,
        queued=queued,
        hostile_name=hostile_name,
        scheduled=scheduled,
        retry=retry.as_view(RetryJob, retry_at=now + 120),
        dead=dead.as_view(DeadJob, died_at=now - 5),
    )


def day_of(epoch: int) -> str:
    """The UTC day of the stats counters (`<ns>:stats:<name>:<day>`)."""
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))
