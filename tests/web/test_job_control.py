"""Job control in the dashboard: the page of each queue (paged, Delete per job, Purge), Cancel on busy workers, and
the API paths `/api/cancel/<job_id>`, `/api/purge/<job_name>`, `/api/delete_queued_job/<job_name>/<job_id>` — all
behind the same CSRF and same-origin checks, with hostile names and ids acting only on themselves."""

from __future__ import annotations

import re
import threading
from urllib.parse import quote

import pytest
import redis
from flask.testing import FlaskClient

from support import wait_until
from web.conftest import PoolStarter
from web.forms import row_form
from web.sample_jobs import CSRF, ESCAPED_SCRIPT, SCRIPT, Placed, cancelled_dead
from web.test_hostile_requests import HOSTILE_IDS, HOSTILE_NAMES
from workq import Client, Enqueuer, Job

JOB_ROW = re.compile(r'<tr data-job-id="([^"]+)"')


def queue_path(name: str, page: int = 1) -> str:
    return f"/queue?job_name={quote(name, safe='')}" + (f"&page={page}" if page > 1 else "")


def text_of(web: FlaskClient, path: str, status: int = 200) -> str:
    response = web.get(path)
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def test_a_queue_page_lists_its_jobs_next_to_run_first_twenty_a_page(
    web: FlaskClient, client: Client, namespace: str
) -> None:
    jobs = Enqueuer(namespace, client.redis).enqueue_many("email", [{"n": index} for index in range(45)])
    first = text_of(web, queue_path("email"))
    third = text_of(web, queue_path("email", 3))
    assert JOB_ROW.findall(first) == [job.id for job in jobs[:20]]
    assert JOB_ROW.findall(third) == [job.id for job in jobs[40:]]
    assert "1–20 of 45 · page 1 of 3" in first and 'href="/queue?job_name=email&amp;page=2"' in first
    assert 'name="next" value="/queue?job_name=email&amp;page=3"' in third, "buttons return to the page they are on"
    purge = [form for form in re.findall(r'<form method="post" action="([^"]+)"', first) if "purge" in form]
    assert purge == ["/api/purge"] and "Delete all 45 queued email jobs?" in first


def test_delete_on_a_queue_page_removes_that_job_and_returns_to_the_page(
    web: FlaskClient, client: Client, placed: Placed
) -> None:
    second = Enqueuer(client.namespace, client.redis).enqueue("email", {"n": 2})
    form = row_form(text_of(web, queue_path("email")), placed.queued.id, "Delete")
    assert form.action == "/api/delete_queued_job"
    assert form.fields == {
        "csrf_token": CSRF,
        "next": "/queue?job_name=email",
        "job_name": "email",
        "job_id": placed.queued.id,
    }
    response = form.submit(web)
    assert response.status_code == 303 and response.headers["Location"] == "/queue?job_name=email"
    assert [job.id for job in client.queued_jobs("email")[0]] == [second.id]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_queue_with_any_name_has_its_own_page_and_purge_acts_on_it_alone(
    web: FlaskClient, client: Client, placed: Placed, name: str
) -> None:
    Enqueuer(client.namespace, client.redis).enqueue(name, {"n": 1})
    overview = text_of(web, "/")
    link = f'href="/queue?job_name={quote(name, safe="")}"'
    assert link in overview, "the name is percent-encoded with nothing left as is"
    page = text_of(web, queue_path(name))
    [job] = client.queued_jobs(name)[0]
    assert JOB_ROW.findall(page) == [job.id]
    purge = row_form(page, "", "Purge")
    assert purge.action == "/api/purge" and purge.fields["job_name"] == name
    response = purge.submit(web)
    assert response.status_code == 303 and response.headers["Location"] == queue_path(name)
    assert client.queued_jobs(name)[1] == 0
    assert client.queued_jobs("email")[1] == 1 and client.dead_jobs()[1] == 1, "nothing else changed"


@pytest.mark.parametrize("job_id", HOSTILE_IDS)
def test_delete_of_a_queued_job_with_any_id_acts_on_that_job(
    web: FlaskClient, client: Client, placed: Placed, *, redis_client: redis.Redis, job_id: str
) -> None:
    hostile = Job(name="email", id=job_id, enqueued_at=placed.now, args={})
    redis_client.lpush(client.keys.queue("email"), hostile.to_json())
    form = row_form(text_of(web, queue_path("email")), job_id, "Delete")
    assert form.submit(web).status_code == 303
    assert [job.id for job in client.queued_jobs("email")[0]] == [placed.queued.id]
    assert client.dead_jobs()[1] == 1


@pytest.mark.parametrize("query", ["", "?job_name=", "?job_name=a%20b", "?job_name=email&page=0"])
def test_a_queue_page_without_a_valid_name_or_page_is_a_400(web: FlaskClient, query: str) -> None:
    text_of(web, "/queue" + query, status=400)


def test_the_queue_page_escapes_what_the_jobs_hold(web: FlaskClient, placed: Placed) -> None:
    text = text_of(web, queue_path("email"))
    assert ESCAPED_SCRIPT in text and SCRIPT not in text


def test_cancel_on_a_busy_worker_asks_its_pool_to_stop_the_job(
    web: FlaskClient,
    client: Client,
    start_pool: PoolStarter,
    release: threading.Event,
    redis_client: redis.Redis,
) -> None:
    started = threading.Event()

    def slow(job: Job) -> None:
        started.set()
        release.wait(30)

    start_pool({"slow": slow})
    job = Enqueuer(client.namespace, client.redis).enqueue("slow", {})
    assert started.wait(20)

    def busy_page() -> str | None:
        text = text_of(web, "/workers")
        return text if job.id in JOB_ROW.findall(text) else None

    page = wait_until(busy_page, what="the busy worker on the workers page")
    form = row_form(page, job.id, "Cancel")
    assert form.action == "/api/cancel" and form.fields["job_id"] == job.id and form.fields["next"] == "/workers"
    assert form.submit(web).status_code == 303
    assert redis_client.exists(client.keys.cancel_request(job.id)) or cancelled_dead(client, job.id)


@pytest.mark.parametrize("job_id", HOSTILE_IDS)
def test_the_api_paths_act_on_the_percent_encoded_value_exactly(
    web: FlaskClient, client: Client, placed: Placed, *, redis_client: redis.Redis, job_id: str
) -> None:
    for _ in range(2):
        redis_client.lpush(client.keys.queue("email"), Job(name="email", id=job_id, enqueued_at=placed.now).to_json())
    headers = {"X-CSRF-Token": CSRF}
    cancelled = web.post(f"/api/cancel/{quote(job_id, safe='')}", headers=headers)
    assert cancelled.status_code == 200 and cancelled.get_json() == {"status": "ok", "was": "queued"}
    deleted = web.post(f"/api/delete_queued_job/email/{quote(job_id, safe='')}", headers=headers)
    assert deleted.status_code == 200
    assert [job.id for job in client.queued_jobs("email")[0]] == [placed.queued.id]
    assert client.dead_jobs()[1] == 1
    missing = web.post(f"/api/cancel/{quote(job_id, safe='')}", headers=headers)
    assert missing.status_code == 404 and "already cancelled" in missing.get_json()["error"]


def test_purge_and_delete_by_path_and_unknown_targets(web: FlaskClient, client: Client, placed: Placed) -> None:
    headers = {"X-CSRF-Token": CSRF}
    missing = web.post("/api/delete_queued_job/email/nope", headers=headers)
    assert missing.status_code == 404 and "no job nope" in missing.get_json()["error"]
    assert web.post("/api/purge/email", headers=headers).get_json() == {"status": "ok", "count": 1}
    assert web.post("/api/purge/email", headers=headers).get_json() == {"status": "ok", "count": 0}
    assert web.post("/api/purge/a%20b", headers=headers).status_code == 400


@pytest.mark.parametrize("path", ["/api/cancel", "/api/purge", "/api/delete_queued_job"])
def test_a_cross_site_post_cannot_cancel_purge_or_delete(
    web: FlaskClient, client: Client, placed: Placed, path: str
) -> None:
    web.get("/")  # the browser holds the cookie
    fields = {"csrf_token": CSRF, "job_id": placed.queued.id, "job_name": "email"}
    response = web.post(path, data=fields, headers={"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"})
    assert response.status_code == 403
    assert [job.id for job in client.queued_jobs("email")[0]] == [placed.queued.id]


def test_the_api_lists_a_queue_and_tells_a_job_s_status(web: FlaskClient, client: Client, placed: Placed) -> None:
    listed = web.get("/api/queued_jobs?job_name=email").get_json()
    assert listed["count"] == 1 and [job["id"] for job in listed["jobs"]] == [placed.queued.id]
    assert listed["jobs"][0]["enqueued_at"] == placed.queued.enqueued_at
    assert web.get("/api/queued_jobs?job_name=a%20b").status_code == 400
    status = web.get(f"/api/job_status/{quote(placed.dead.id, safe='')}").get_json()
    assert (status["state"], status["job_name"], status["fails"]) == ("dead", "email", 4)
    missing = web.get("/api/job_status/nope")
    assert missing.status_code == 404 and "no job nope" in missing.get_json()["error"]
