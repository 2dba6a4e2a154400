"""One bad entry never breaks a page or an API answer: scores of ±inf and 1e22, a job delayed by 10**17 s, args
nested 600 deep, negative fails, "inf" in stats and heartbeat fields. Each shows as one marked row saying what is
wrong, and the good entries around it render as usual."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from web.forms import row_form
from web.sample_jobs import BadEntries, place_bad_entries
from workq import Client

JOB_SETS = {"scheduled": "run_at", "retry": "retry_at", "dead": "died_at"}
ROW = re.compile(r'<tr data-job-id="([^"]+)"( class="problem")?>(.*?)</tr>', re.S)


@pytest.fixture
def bad(redis_client: redis.Redis, namespace: str) -> BadEntries:
    return place_bad_entries(redis_client, namespace)


def bad_in(job_set: str, bad: BadEntries) -> dict[str, str]:
    """The bad entries of a set: the scheduled one also holds the job enqueued 10**17 s ahead."""
    return {**bad.bad_jobs, **({bad.far_scheduled.id: "1e+17"} if job_set == "scheduled" else {})}


def problem_rows(html: str) -> dict[str, str]:
    """Job id -> the row's text, for rows marked as bad entries; good rows map to ''."""
    return {job_id: (body if marked else "") for job_id, marked, body in ROW.findall(html)}


@pytest.mark.parametrize("job_set", JOB_SETS)
def test_a_job_page_lists_good_and_bad_entries_each_bad_one_marked(
    web: FlaskClient, bad: BadEntries, job_set: str
) -> None:
    response = web.get(f"/{job_set}")
    assert response.status_code == 200
    rows = problem_rows(response.get_data(as_text=True))
    assert rows.pop(bad.good.id) == "", "the good job renders unmarked"
    assert set(rows) == set(bad_in(job_set, bad))
    for job_id, words in bad_in(job_set, bad).items():
        assert "Bad entry in Redis" in rows[job_id] and words in rows[job_id], job_id


@pytest.mark.parametrize(("job_set", "score_field"), JOB_SETS.items())
def test_the_api_lists_every_entry_and_names_each_problem(
    web: FlaskClient, bad: BadEntries, job_set: str, score_field: str
) -> None:
    response = web.get(f"/api/{job_set}_jobs")
    assert response.status_code == 200
    answer: dict[str, Any] = response.get_json()
    expected = bad_in(job_set, bad)
    assert answer["count"] == len(expected) + 1
    records = {record["id"]: record for record in answer["jobs"]}
    assert "problem" not in records.pop(bad.good.id)
    assert all(isinstance(record[score_field], int) for record in records.values()), "gocraft/work's int scores"
    assert {job_id: words in records[job_id]["problem"] for job_id, words in expected.items()} == dict.fromkeys(
        expected, True
    )
    assert records["inf-score"][score_field] == 0


def test_a_far_future_scheduled_job_is_marked_and_can_still_be_deleted(
    web: FlaskClient, client: Client, bad: BadEntries
) -> None:
    html = web.get("/scheduled").get_data(as_text=True)
    row = problem_rows(html)[bad.far_scheduled.id]
    assert "not a time between 1970 and 9999" in row
    assert row_form(html, bad.far_scheduled.id, "Delete").submit(web).status_code == 303
    assert bad.far_scheduled.id not in [job.id for job in client.scheduled_jobs()[0]]


@pytest.mark.parametrize("job_set", JOB_SETS)
def test_every_bad_entry_can_be_deleted_from_its_row(
    web: FlaskClient, client: Client, bad: BadEntries, job_set: str
) -> None:
    """Before: the rows of ±inf entries (shown at 0) and of 1.8e308 (309 digits) answered 404 / 400."""
    for job_id in bad_in(job_set, bad):
        html = web.get(f"/{job_set}").get_data(as_text=True)
        assert row_form(html, job_id, "Delete").submit(web).status_code == 303, job_id
    jobs, _ = {"scheduled": client.scheduled_jobs, "retry": client.retry_jobs, "dead": client.dead_jobs}[job_set]()
    assert [job.id for job in jobs] == [bad.good.id]


def test_every_bad_dead_entry_that_is_a_job_can_be_retried_from_its_row(
    web: FlaskClient, client: Client, redis_client: redis.Redis, namespace: str, bad: BadEntries
) -> None:
    runnable = {job_id for job_id in bad.bad_jobs if not job_id.startswith("malformed-")}
    for job_id in runnable:
        html = web.get("/dead").get_data(as_text=True)
        assert row_form(html, job_id, "Retry").submit(web).status_code == 303, job_id
    queued = {
        json.loads(member)["id"]
        for key in redis_client.scan_iter(f"{namespace}:jobs:*")
        for member in redis_client.lrange(key, 0, -1)
    }
    assert runnable <= queued
    assert {job.id for job in client.dead_jobs()[0]} == {bad.good.id, *(set(bad.bad_jobs) - runnable)}


def test_overview_workers_and_their_api_mark_bad_counters_heartbeats_and_observations(
    web: FlaskClient, bad: BadEntries
) -> None:
    for path in ["/", "/workers", "/api/queues", "/api/stats", "/api/worker_pools", "/api/busy_workers"]:
        assert web.get(path).status_code == 200, path
    overview = web.get("/").get_data(as_text=True)
    assert re.search(r'data-queue="inf_stats" class="problem">.*?processed is &#39;inf&#39;', overview, re.S)
    assert re.search(r'data-queue="email">', overview), "the good queue is unmarked"
    [pool] = web.get("/api/worker_pools").get_json()
    assert "heartbeat_at is 'inf'" in pool["problem"] and "concurrency is '1e400'" in pool["problem"]
    assert pool["heartbeat_at"] == 0 and pool["pid"] == 0
    [worker] = web.get("/api/busy_workers").get_json()
    assert "started_at is 'inf'" in worker["problem"] and "checkin_at 1e+30" in worker["problem"]
    workers = web.get("/workers").get_data(as_text=True)
    assert workers.count('class="problem"') == 2 and "Bad entry in Redis" in workers
    stats = web.get("/api/stats").get_json()
    assert {job["job_name"] for job in stats["jobs"]} == {"email", "far_future", "inf_stats"}
