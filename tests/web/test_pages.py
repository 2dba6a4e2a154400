"""The HTML pages through Flask's test client, on a real Redis with jobs in every state."""

from __future__ import annotations

import re
import threading

import pytest
import redis
from flask.testing import FlaskClient

from support import wait_until
from web.conftest import PoolStarter
from web.forms import row_form
from web.sample_jobs import CSRF, ESCAPED_SCRIPT, HOSTILE_ARGS, SCRIPT, Placed, day_of, failed_job, file_job
from workq import Client, Enqueuer, Job
from workq.web import create_app

PAGES = ["/", "/workers", "/scheduled", "/retry", "/dead"]
JOB_ROW = re.compile(r'<tr data-job-id="([^"]+)"')


def page_text(web: FlaskClient, path: str, status: int = 200) -> str:
    response = web.get(path)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_on_an_empty_namespace(web: FlaskClient, path: str) -> None:
    text = page_text(web, path)
    assert '<main id="main"' in text and 'name="csrf-token" content="test-csrf-token"' in text


@pytest.mark.parametrize("path", ["/", "/scheduled", "/retry", "/dead"])
def test_hostile_job_values_are_escaped_on_every_page_that_shows_them(
    web: FlaskClient, placed: Placed, path: str
) -> None:
    text = page_text(web, path)
    assert SCRIPT not in text
    assert ESCAPED_SCRIPT in text
    assert "<img src=x" not in text


def test_overview_shows_queues_todays_outcomes_pools_and_recent_dead(
    web: FlaskClient, placed: Placed, redis_client: redis.Redis, namespace: str
) -> None:
    redis_client.hset(f"{namespace}:stats:email:{day_of(placed.now)}", mapping={"processed": 97, "failed": 3})
    text = page_text(web, "/")
    email_row = _row(text, 'data-queue="email"')
    assert '<td class="num">1</td>' in email_row, "one email job queued"
    assert ">97<" in email_row and ">3<" in email_row and ">3.0%<" in email_row
    assert "Active" in email_row and ">Pause<" in email_row
    assert f'data-queue="{ESCAPED_SCRIPT}"' in text, "attribute values are escaped too"
    assert "smtp said " + ESCAPED_SCRIPT in text, "recent dead jobs show their error"
    assert "No live worker pools." in text
    nav = text[text.index('<nav class="tabs"') : text.index("</nav>")]
    assert re.search(r"Dead<span class=\"badge bad\">1</span>", nav), nav


def test_job_pages_show_each_job_with_pretty_json_args_and_its_buttons(web: FlaskClient, placed: Placed) -> None:
    pretty_note = "\n  &#34;note&#34;: &#34;&lt;script&gt;"
    dead = page_text(web, "/dead")
    assert JOB_ROW.findall(dead) == [placed.dead.id]
    assert pretty_note in dead and "&#34;nested&#34;: {&#34;html&#34;: &#34;&lt;img" in dead
    target = {"died_at": str(placed.dead.died_at), "job_id": placed.dead.id}
    assert row_form(dead, placed.dead.id, "Retry").action == "/api/retry_dead_job"
    assert row_form(dead, placed.dead.id, "Retry").fields == {"csrf_token": CSRF, "next": "/dead", **target}
    assert row_form(dead, placed.dead.id, "Delete").action == "/api/delete_dead_job"
    assert row_form(dead, placed.dead.id, "Delete").fields == {"csrf_token": CSRF, "next": "/dead", **target}
    assert 'action="/api/retry_all_dead_jobs"' in dead and 'action="/api/delete_all_dead_jobs"' in dead
    assert "data-confirm=" in dead

    retry = page_text(web, "/retry")
    assert JOB_ROW.findall(retry) == [placed.retry.id] and pretty_note in retry
    delete_retry = row_form(retry, placed.retry.id, "Delete")
    assert delete_retry.action == "/api/delete_retry_job"
    assert (delete_retry.fields["retry_at"], delete_retry.fields["job_id"]) == (
        str(placed.retry.retry_at),
        placed.retry.id,
    )
    assert "retry_dead_job" not in retry

    scheduled = page_text(web, "/scheduled")
    assert JOB_ROW.findall(scheduled) == [placed.scheduled.id] and pretty_note in scheduled
    delete_scheduled = row_form(scheduled, placed.scheduled.id, "Delete")
    assert delete_scheduled.action == "/api/delete_scheduled_job"
    assert delete_scheduled.fields["run_at"] == str(placed.scheduled.run_at)
    assert "in 59m" in scheduled or "in 1h 00m" in scheduled


def test_dead_jobs_are_paginated_twenty_a_page(
    web: FlaskClient, client: Client, redis_client: redis.Redis, namespace: str
) -> None:
    now = 1_800_000_000
    for n in range(25):
        file_job(redis_client, namespace, "dead", failed_job("email", now, 4, {"n": n}), now - n)
    first = page_text(web, "/dead")
    second = page_text(web, "/dead?page=2")
    assert len(JOB_ROW.findall(first)) == 20 and len(JOB_ROW.findall(second)) == 5
    assert [job.id for job in client.dead_jobs(1)[0]] == JOB_ROW.findall(first)
    assert "1–20 of 25 · page 1 of 2" in first and 'href="/dead?page=2"' in first and 'rel="next"' in first
    assert "21–25 of 25 · page 2 of 2" in second and 'rel="prev"' in second and 'rel="next"' not in second
    assert 'name="next" value="/dead?page=2"' in second, "buttons return to the page they are on"
    beyond = page_text(web, "/dead?page=3")
    assert "No jobs on this page." in beyond and not JOB_ROW.findall(beyond)


@pytest.mark.parametrize("page", ["0", "-1", "abc", "1.5", "", "²", "99999999999"])
def test_a_bad_page_number_is_a_400(web: FlaskClient, page: str) -> None:
    text = page_text(web, f"/dead?page={page}", status=400)
    assert "page must be a whole number" in text


def test_workers_page_shows_pools_and_busy_workers_with_their_checkin(
    web: FlaskClient, client: Client, start_pool: PoolStarter, release: threading.Event, namespace: str
) -> None:
    def slow(job: Job) -> None:
        job.checkin(f"halfway {SCRIPT}")
        release.wait(10)

    pool = start_pool({"slow": slow})
    Enqueuer(namespace, client.redis).enqueue("slow", HOSTILE_ARGS)
    wait_until(lambda: any(worker.checkin for worker in client.worker_observations()), what="the busy worker's checkin")
    text = page_text(web, "/workers")
    assert pool.pool_id[:8] in text and f'title="{pool.pool_id}"' in text
    assert '<span class="chip">slow</span>' in text and '<span class="usage">1 / 2</span>' in text
    assert f"halfway {ESCAPED_SCRIPT}" in text, "the checkin message"
    assert "&#34;note&#34;: &#34;" + ESCAPED_SCRIPT in text, "the busy job's args, pretty-printed"
    assert SCRIPT not in text
    overview = page_text(web, "/")
    assert '1<span class="card-of"> / 2</span>' in overview, "busy workers out of the pools' concurrency"


def test_forms_without_js_post_to_the_api_and_are_sent_back_with_303(
    web: FlaskClient, client: Client, placed: Placed
) -> None:
    response = web.post(
        f"/api/retry_dead_job/{placed.dead.died_at}/{placed.dead.id}",
        data={"csrf_token": CSRF, "next": "/dead"},
    )
    assert response.status_code == 303 and response.headers["Location"] == "/dead"
    assert client.dead_jobs() == ([], 0)
    assert placed.dead.id in [job.id for job in client.peek("email", 5)]


def test_pause_and_resume_a_queue_from_the_overview(web: FlaskClient, client: Client, placed: Placed) -> None:
    response = web.post("/api/pause/email", data={"csrf_token": CSRF, "next": "/"})
    assert response.status_code == 303 and client.is_paused("email")
    row = _row(page_text(web, "/"), 'data-queue="email"')
    assert "Paused" in row and ">Resume<" in row
    resume = row_form(page_text(web, "/"), "email", "Resume")
    assert (resume.action, resume.fields["job_name"]) == ("/api/unpause", "email")
    response = web.post("/api/unpause/email", data={"csrf_token": CSRF, "next": "/"})
    assert response.status_code == 303 and not client.is_paused("email")
    assert "Active" in _row(page_text(web, "/"), 'data-queue="email"')


def test_a_queue_whose_name_is_markup_can_be_paused_through_its_own_button(
    web: FlaskClient, client: Client, placed: Placed
) -> None:
    form = row_form(page_text(web, "/"), SCRIPT, "Pause")
    assert form.action == "/api/pause" and form.fields["job_name"] == SCRIPT
    assert form.submit(web).status_code == 303
    assert client.is_paused(SCRIPT)


def test_a_form_acting_on_a_job_that_is_gone_gets_an_error_page_with_a_way_back(
    web: FlaskClient, placed: Placed
) -> None:
    response = web.post(
        f"/api/delete_dead_job/{placed.dead.died_at}/not-there", data={"csrf_token": CSRF, "next": "/dead?page=1"}
    )
    assert response.status_code == 404 and response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    assert "no job not-there" in text and 'href="/dead?page=1"' in text


def test_a_dead_member_that_is_not_a_job_is_shown_escaped_and_can_be_deleted_but_not_retried(
    web: FlaskClient, client: Client, redis_client: redis.Redis, namespace: str
) -> None:
    redis_client.zadd(f"{namespace}:dead", {f'{{"name": "{SCRIPT}", truncated'.encode(): 1_800_000_000})
    text = page_text(web, "/dead")
    [job_id] = JOB_ROW.findall(text)
    assert job_id.startswith("malformed-") and "other fields" in text
    assert SCRIPT not in text and "&#34;payload&#34;: &#34;{\\&#34;name\\&#34;: \\&#34;" + ESCAPED_SCRIPT in text
    form = {"csrf_token": CSRF, "next": "/dead"}
    refused = web.post(f"/api/retry_dead_job/1800000000/{job_id}", data=form)
    assert refused.status_code == 404 and "not a valid job" in refused.get_data(as_text=True)
    assert web.post(f"/api/delete_dead_job/1800000000/{job_id}", data=form).status_code == 303
    assert client.dead_jobs() == ([], 0)


def test_pages_say_so_when_redis_is_unreachable() -> None:
    down = create_app(Client("web-test", "redis://127.0.0.1:1/0"), csrf_token=CSRF).test_client()
    response = down.get("/")
    assert response.status_code == 503 and "cannot reach Redis at 127.0.0.1:1/0" in response.get_data(as_text=True)
    api = down.get("/api/queues")
    assert api.status_code == 503 and "cannot reach Redis" in api.get_json()["error"]


@pytest.mark.parametrize("asset", ["dashboard.css", "dashboard.js", "favicon.svg"])
def test_static_assets_are_served_locally(web: FlaskClient, asset: str) -> None:
    response = web.get(f"/static/{asset}")
    assert response.status_code == 200 and response.headers["X-Content-Type-Options"] == "nosniff"
    response.close()


def _row(text: str, marker: str) -> str:
    start = text.index(marker)
    return text[start : text.index("</tr>", start)]
