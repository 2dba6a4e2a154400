"""The dashboard's operating views on a real Redis: cron schedules and their ticks apart from one-off jobs, names
no live pool serves, empty views that name their namespace, and a retried job's original enqueue time."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from flask.testing import FlaskClient

from support import wait_until
from web.conftest import PoolStarter
from web.sample_jobs import CSRF, file_job
from workq import Client, Enqueuer, Job, WorkerPool
from workq.web import create_app
from workq.web.security import LOOPBACK_HOSTS

EVERY_10S = "*/10 * * * * *"
JOB_ROW = re.compile(r'<tr data-job-id="([^"]+)"')


@pytest.fixture
def cron_pool(namespace: str, redis_url: str, redis_client: redis.Redis) -> Iterator[WorkerPool]:
    pool = WorkerPool(namespace, redis_url, concurrency=1)
    pool.job("report", lambda job: None)
    pool.periodically_enqueue(EVERY_10S, "report")
    pool.start()
    wait_until(lambda: redis_client.zcard(f"{namespace}:scheduled") >= 20, what="the first cron pass")
    yield pool
    pool.stop()


def text(web: FlaskClient, path: str) -> str:
    response = web.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def test_schedules_page_and_api_list_the_specs_of_live_pools(web: FlaskClient, cron_pool: WorkerPool) -> None:
    page = text(web, "/schedules")
    assert f'<tr data-schedule="report {EVERY_10S}"' in page
    assert 'aria-current="page">Schedules' in page
    [schedule] = web.get("/api/schedules").get_json()
    assert (schedule["job_name"], schedule["spec"], schedule["pool_ids"]) == ("report", EVERY_10S, [cron_pool.pool_id])
    assert len(schedule["next_fire_times"]) == 3 and schedule["next_fire_times"][0] > time.time() - 1


def test_scheduled_page_lists_one_off_jobs_and_cron_ticks_apart(
    web: FlaskClient, cron_pool: WorkerPool, namespace: str, redis_url: str
) -> None:
    one_off = Enqueuer(namespace, redis_url).enqueue_in("email", 600)
    scheduled = text(web, "/scheduled")
    assert JOB_ROW.findall(scheduled) == [one_off.id]
    ticks = JOB_ROW.findall(text(web, "/scheduled/cron"))
    assert len(ticks) == 20 and all(tick.startswith("periodic:report:") for tick in ticks)
    assert re.search(r"Cron ticks\s*<span class=\"badge\">2\d</span>", scheduled), "the tab says how many ticks"
    one_off_api = web.get("/api/scheduled_jobs?kind=one_off").get_json()
    cron_api = web.get("/api/scheduled_jobs?kind=cron").get_json()
    everything = web.get("/api/scheduled_jobs").get_json()
    assert [job["id"] for job in one_off_api["jobs"]] == [one_off.id]
    assert everything["count"] == one_off_api["count"] + cron_api["count"], "gocraft/work's view lists them all"
    assert web.get("/api/scheduled_jobs?kind=weekly").status_code == 400


def test_overview_marks_names_no_live_pool_serves(
    web: FlaskClient, start_pool: PoolStarter, namespace: str, redis_url: str
) -> None:
    start_pool({"email": lambda job: None})
    Enqueuer(namespace, redis_url).enqueue("emial")
    page = text(web, "/")
    typo_row = page.split('<tr data-queue="emial"', 1)[1].split("</tr>", 1)[0]
    served_row = page.split('<tr data-queue="email"', 1)[1].split("</tr>", 1)[0]
    assert "Unserved" in typo_row and "Unserved" not in served_row
    rows = {row["job_name"]: row["pools"] for row in web.get("/api/queues").get_json()}
    assert rows == {"email": 1, "emial": 0}


@pytest.mark.parametrize("path", ["/", "/workers", "/scheduled", "/scheduled/cron", "/schedules", "/retry", "/dead"])
def test_an_empty_view_names_its_namespace_and_how_to_change_it(web: FlaskClient, path: str, namespace: str) -> None:
    page = text(web, path)
    assert f"Namespace <code>{namespace}</code>" in page
    assert "workq web --namespace NS" in page


def test_a_retried_job_shows_when_it_was_first_enqueued_and_its_next_attempt(
    client: Client, redis_client: redis.Redis, namespace: str
) -> None:
    now = int(time.time())
    web = create_app(client, csrf_token=CSRF, allowed_hosts=LOOPBACK_HOSTS, clock=lambda: now).test_client()
    retried = Job(
        name="email",
        enqueued_at=now - 30,
        fails=2,
        last_err="down",
        failed_at=now - 5,
        extra={"first_enqueued_at": now - 600},
    )
    file_job(redis_client, namespace, "retry", retried, now + 60)
    page = text(web, "/retry")
    row = page.split(f'<tr data-job-id="{retried.id}"', 1)[1].split("</tr>", 1)[0]
    enqueued = row.split('data-field="enqueued">', 1)[1].split("</div>", 1)[0]
    assert "10m 00s ago" in enqueued and "requeued" in enqueued and "30s ago" in enqueued
    assert "next: attempt 3" in row
    assert "other fields" not in row, "the first enqueue time is shown in place, not as an unknown field"
    [listed] = web.get("/api/retry_jobs").get_json()["jobs"]
    assert (listed["t"], listed["first_enqueued_at"], listed["fails"]) == (now - 30, now - 600, 2)


def test_a_busy_worker_shows_which_attempt_it_runs_and_when_the_job_was_first_enqueued(
    web: FlaskClient, start_pool: PoolStarter, release: threading.Event, redis_client: redis.Redis, namespace: str
) -> None:
    now = int(time.time())
    retried = Job(name="slow", enqueued_at=now - 5, fails=2, extra={"first_enqueued_at": now - 600})
    redis_client.lpush(f"{namespace}:jobs:slow", retried.to_json())
    start_pool({"slow": lambda job: release.wait(20) and None})
    [busy] = wait_until(lambda: web.get("/api/busy_workers").get_json(), what="the job to be observed running")
    assert (busy["job_id"], busy["attempt"], busy["enqueued_at"]) == (retried.id, 3, now - 600)
    attempt = text(web, "/workers").split('data-field="attempt">', 1)[1].split("</div>", 1)[0]
    assert "attempt 3" in attempt and re.search(r"enqueued .*10m 0\ds ago", attempt)
