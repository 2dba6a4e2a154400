"""Jobs for the dashboard tests, put straight into Redis as a worker or the enqueuer would leave them, carrying
arguments and errors that are markup, so every page can be checked for escaping."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import redis

from workq import Client, DeadJob, Enqueuer, Job, RetryJob, ScheduledJob
from workq.keys import Keys
from workq.throughput import MINUTES_KEPT

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


def file_minute(
    redis_client: redis.Redis, namespace: str, name: str, at: float, *, processed: int, failed: int, latency: int = 0
) -> None:
    """Counts of one past minute of `name`, written as pools' tallies write them (workq.throughput's layout)."""
    key = Keys(namespace).minutes(name, at)
    minute = time.strftime("%M", time.gmtime(at))
    pipe = redis_client.pipeline(transaction=False)
    pipe.hincrby(key, f"processed:{minute}", processed)
    pipe.hincrby(key, f"failed:{minute}", failed)
    pipe.hset(key, f"latency:{minute}", latency)
    pipe.expire(key, MINUTES_KEPT)
    pipe.execute()


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


def cancelled_dead(client: Client, job_id: str) -> bool:
    """The pool acted on a cancel request already: the job is dead, "cancelled"."""
    status = client.job_status(job_id)
    return status is not None and status.state == "dead" and "cancelled" in status.last_err


def day_of(epoch: int) -> str:
    """The UTC day of the stats counters (`<ns>:stats:<name>:<day>`)."""
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


DEEP_ARGS_JOB = '{"name":"deep","id":"deep-1","t":1700000000,"args":{"x":' + "[" * 600 + "]" * 600 + "}}"
NO_ID_JOB = '{"name":"no_id","t":1700000000,"args":{"n":1}}'
"""A job no worker writes: gocraft/work gives every job an id."""


@dataclass(frozen=True)
class BadEntries:
    """Entries no worker writes but Redis may hold (corruption, another writer, a buggy script), each next to a
    good one: every view must list the good one and mark each bad one with what is wrong."""

    now: int
    good: Job
    bad_jobs: dict[str, str]
    """Job id of each bad sorted-set entry -> words its problem must contain."""
    far_scheduled: ScheduledJob


def place_bad_entries(redis_client: redis.Redis, namespace: str) -> BadEntries:
    now = int(time.time())
    enqueuer = Enqueuer(namespace, redis_client)
    enqueuer.enqueue("email", {"n": 1})
    # What an older workq (or another writer) filed for enqueue_in(10**17): enqueue_in refuses it now.
    far_job = Job(name="far_future", enqueued_at=now)
    redis_client.zadd(f"{namespace}:scheduled", {far_job.to_json(): now + 10**17})
    redis_client.sadd(f"{namespace}:known_jobs", "far_future")
    far = far_job.as_view(ScheduledJob, run_at=now + 10**17)
    good = failed_job("email", now, fails=2, args={"fine": True})
    entries = {
        "inf_score": (Job(name="inf_score", id="inf-score", enqueued_at=now), float("inf")),
        "minus_inf": (Job(name="minus_inf", id="minus-inf", enqueued_at=now), float("-inf")),
        "huge_score": (Job(name="huge_score", id="huge-score", enqueued_at=now), 1e22),
        "largest_score": (Job(name="largest_score", id="largest-score", enqueued_at=now), 1.7976931348623157e308),
        "negative_fails": (Job(name="negative", id="negative-fails", enqueued_at=now, fails=-5), now),
        "far_t": (Job(name="far_t", id="far-t", enqueued_at=10**17), now),
    }
    for zset in ("scheduled", "retry", "dead"):
        file_job(redis_client, namespace, zset, good, now - 1)
        for job, score in entries.values():
            redis_client.zadd(f"{namespace}:{zset}", {job.to_json(): score})
        redis_client.zadd(f"{namespace}:{zset}", {DEEP_ARGS_JOB: now - 2, NO_ID_JOB: now - 3})
    redis_client.sadd(f"{namespace}:known_jobs", "email", "inf_stats")
    day = day_of(now)
    redis_client.hset(f"{namespace}:stats:inf_stats:{day}", mapping={"processed": "inf", "failed": "-3"})
    redis_client.sadd(f"{namespace}:worker_pools", "bad-pool")
    redis_client.hset(
        f"{namespace}:worker_pools:bad-pool",
        mapping={"heartbeat_at": "inf", "started_at": "nan", "concurrency": "1e400", "pid": "-1", "worker_ids": "w1"},
    )
    redis_client.hset(
        f"{namespace}:worker:w1",
        mapping={"job_name": "email", "job_id": "j1", "started_at": "inf", "checkin_at": "1e30", "args": "[" * 5000},
    )
    bad_jobs = {
        "inf-score": "inf",
        "minus-inf": "-inf",
        "huge-score": "1e+22",
        "largest-score": "1.79769e+308",
        "negative-fails": "fails is negative",
        "far-t": "t 1e+17",
        "malformed-" + hashlib.sha256(DEEP_ARGS_JOB.encode()).hexdigest()[:24]: "nest too deep",
        "no-id-" + hashlib.sha256(NO_ID_JOB.encode()).hexdigest()[:24]: "the job has no id",
    }
    return BadEntries(now=now, good=good, bad_jobs=bad_jobs, far_scheduled=far)
