"""Entries of the scheduled, retry and dead sets whose scores no workq writes (±inf, fractions, 1e300, below 1970),
on a real Redis: each is listed, and the score its view shows names it for delete and retry — that entry only."""

from __future__ import annotations

import math

import pytest
import redis

from workq import Client, Job, NotDeleted
from workq.client import PROBLEM_FIELD

NOW = 1_800_000_000
ODD_SCORES = {
    "plus-inf": math.inf,
    "minus-inf": -math.inf,
    "fraction": NOW + 0.75,
    "negative-fraction": -7.25,
    "tiny": 1e-300,
    "huge": 1e300,
    "largest": 1.7976931348623157e308,
    "far": NOW + 10.0**17,
}
SETS = {"scheduled": "run_at", "retry": "retry_at", "dead": "died_at"}


@pytest.fixture
def client(namespace: str, redis_client: redis.Redis) -> Client:
    return Client(namespace, redis_client, clock=lambda: NOW)


def file_odd_entries(redis_client: redis.Redis, namespace: str, zset: str) -> dict[str, Job]:
    """One job per odd score, plus decoys that share a shown score with one of them: a job at 0.5 (shown as 0,
    like ±inf) and one a second after the fraction."""
    jobs = {job_id: Job(name="odd", id=job_id, enqueued_at=NOW) for job_id in [*ODD_SCORES, "half", "next-second"]}
    scores = {**ODD_SCORES, "half": 0.5, "next-second": NOW + 1.0}
    redis_client.zadd(f"{namespace}:{zset}", {jobs[job_id].to_json(): score for job_id, score in scores.items()})
    return jobs


def listed(client: Client, zset: str) -> dict[str, int]:
    jobs, _ = {"scheduled": client.scheduled_jobs, "retry": client.retry_jobs, "dead": client.dead_jobs}[zset]()
    return {job.id: getattr(job, SETS[zset]) for job in jobs}


@pytest.mark.parametrize("zset", SETS)
@pytest.mark.parametrize("job_id", ODD_SCORES)
def test_the_score_a_view_shows_deletes_that_entry_only(
    client: Client, redis_client: redis.Redis, namespace: str, zset: str, job_id: str
) -> None:
    file_odd_entries(redis_client, namespace, zset)
    before = listed(client, zset)
    delete = {
        "scheduled": client.delete_scheduled_job,
        "retry": client.delete_retry_job,
        "dead": client.delete_dead_job,
    }[zset]
    delete(before[job_id], job_id)
    after = listed(client, zset)
    assert job_id not in after and after == {other: shown for other, shown in before.items() if other != job_id}
    with pytest.raises(NotDeleted):
        delete(before[job_id], job_id)


@pytest.mark.parametrize("job_id", ODD_SCORES)
def test_the_score_a_view_shows_retries_that_dead_entry(
    client: Client, redis_client: redis.Redis, namespace: str, job_id: str
) -> None:
    file_odd_entries(redis_client, namespace, "dead")
    died_at = listed(client, "dead")[job_id]
    client.retry_dead_job(died_at, job_id)
    [queued] = [Job.from_json(member) for member in redis_client.lrange(f"{namespace}:jobs:odd", 0, -1)]
    assert (queued.id, queued.fails, queued.enqueued_at) == (job_id, 0, NOW)
    assert job_id not in listed(client, "dead")


def test_an_exact_score_names_an_entry_too(client: Client, redis_client: redis.Redis, namespace: str) -> None:
    file_odd_entries(redis_client, namespace, "dead")
    for job_id in ("plus-inf", "minus-inf", "fraction", "largest"):
        client.delete_dead_job(ODD_SCORES[job_id], job_id)
    assert not {"plus-inf", "minus-inf", "fraction", "largest"} & set(listed(client, "dead"))
    with pytest.raises(TypeError, match="score is a number"):
        client.delete_dead_job(math.nan, "half")


def test_odd_scores_are_shown_as_whole_seconds_and_marked(
    client: Client, redis_client: redis.Redis, namespace: str
) -> None:
    file_odd_entries(redis_client, namespace, "dead")
    jobs = {job.id: job for job in client.dead_jobs()[0]}
    assert {job_id: jobs[job_id].died_at for job_id in ("plus-inf", "minus-inf", "fraction", "half")} == {
        "plus-inf": 0,
        "minus-inf": 0,
        "fraction": NOW,
        "half": 0,
    }
    marked = {job_id for job_id, job in jobs.items() if job.extra.get(PROBLEM_FIELD)}
    assert marked == {"plus-inf", "minus-inf", "negative-fraction", "huge", "largest", "far"}
