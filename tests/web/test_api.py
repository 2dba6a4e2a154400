"""The JSON API under /api/ (gocraft/work's web UI) through Flask's test client, on a real Redis."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import quote

import pytest
import redis
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from support import wait_until
from web.conftest import PoolStarter
from web.forms import row_form
from web.sample_jobs import CSRF, HOSTILE_ARGS, SCRIPT, Placed, day_of, failed_job, file_job
from workq import Client, Enqueuer, Job


def get_json(web: FlaskClient, path: str, status: int = 200) -> Any:
    response = web.get(path)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


def post(web: FlaskClient, path: str) -> TestResponse:
    return web.post(path, headers={"X-CSRF-Token": CSRF})


def test_queues_lists_every_known_name_with_count_latency_and_pause_state(web: FlaskClient, placed: Placed) -> None:
    queues = {queue["job_name"]: queue for queue in get_json(web, "/api/queues")}
    assert set(queues) == {"email", SCRIPT, "report"}
    assert queues["email"]["count"] == 1 and queues["email"]["paused"] is False
    assert queues["report"]["count"] == 0, "a scheduled job is not queued yet"
    assert list(queues["email"])[:3] == ["job_name", "count", "latency"], "gocraft/work's fields first"


def test_job_lists_return_count_and_jobs_with_their_score(web: FlaskClient, placed: Placed) -> None:
    dead = get_json(web, "/api/dead_jobs")
    assert dead == {
        "count": 1,
        "jobs": [
            {
                "died_at": placed.dead.died_at,
                "name": "email",
                "id": placed.dead.id,
                "t": placed.dead.enqueued_at,
                "args": HOSTILE_ARGS,
                "unique": False,
                "fails": 4,
                "err": f"RuntimeError: smtp said {SCRIPT}",
                "failed_at": placed.dead.failed_at,
            }
        ],
    }
    [retry] = get_json(web, "/api/retry_jobs?page=1")["jobs"]
    assert (retry["retry_at"], retry["id"], retry["fails"]) == (placed.retry.retry_at, placed.retry.id, 1)
    [scheduled] = get_json(web, "/api/scheduled_jobs")["jobs"]
    assert (scheduled["run_at"], scheduled["id"], scheduled["args"]) == (
        placed.scheduled.run_at,
        placed.scheduled.id,
        HOSTILE_ARGS,
    )


def test_job_lists_page_twenty_at_a_time(
    web: FlaskClient, redis_client: redis.Redis, namespace: str, placed: Placed
) -> None:
    for n in range(24):
        file_job(redis_client, namespace, "dead", failed_job("email", placed.now, 4, {"n": n}), placed.now - 100 - n)
    first, second = get_json(web, "/api/dead_jobs?page=1"), get_json(web, "/api/dead_jobs?page=2")
    assert (first["count"], len(first["jobs"]), second["count"], len(second["jobs"])) == (25, 20, 25, 5)
    assert get_json(web, "/api/dead_jobs?page=3") == {"count": 25, "jobs": []}


@pytest.mark.parametrize("endpoint", ["dead_jobs", "retry_jobs", "scheduled_jobs"])
@pytest.mark.parametrize("page", ["0", "x", "-2"])
def test_a_bad_page_is_a_400_with_a_json_error(web: FlaskClient, endpoint: str, page: str) -> None:
    answer = get_json(web, f"/api/{endpoint}?page={page}", status=400)
    assert "page must be a whole number" in answer["error"]


def test_worker_pools_and_busy_workers(
    web: FlaskClient, client: Client, namespace: str, start_pool: PoolStarter, release: threading.Event
) -> None:
    def slow(job: Job) -> None:
        job.checkin("step 2 of 3")
        release.wait(10)

    pool = start_pool({"slow": slow})
    job = Enqueuer(namespace, client.redis).enqueue("slow", {"user": 7})
    wait_until(lambda: get_json(web, "/api/busy_workers"), what="a busy worker")
    wait_until(lambda: get_json(web, "/api/busy_workers")[0]["checkin"], what="its checkin")
    [heartbeat] = get_json(web, "/api/worker_pools")
    assert heartbeat["worker_pool_id"] == pool.pool_id and heartbeat["job_names"] == ["slow"]
    assert heartbeat["concurrency"] == 2 and len(heartbeat["worker_ids"]) == 2 and heartbeat["pid"] > 0
    [busy] = get_json(web, "/api/busy_workers")
    assert (busy["job_name"], busy["job_id"], busy["is_busy"], busy["checkin"]) == ("slow", job.id, True, "step 2 of 3")
    assert busy["args_json"] == '{"user":7}' and busy["worker_id"] in heartbeat["worker_ids"]
    stats = get_json(web, "/api/stats")
    assert (stats["worker_pools"], stats["concurrency"], stats["busy_workers"]) == (1, 2, 1)


def test_stats_totals_today_and_set_sizes(
    web: FlaskClient, placed: Placed, redis_client: redis.Redis, namespace: str
) -> None:
    day = day_of(placed.now)
    redis_client.hset(f"{namespace}:stats:email:{day}", mapping={"processed": 8, "failed": 2})
    stats = get_json(web, "/api/stats")
    assert stats["day"] == day
    assert (stats["queued"], stats["scheduled"], stats["retry"], stats["dead"]) == (2, 1, 1, 1)
    assert (stats["processed"], stats["failed"], stats["error_rate"]) == (8, 2, 0.2)
    email = next(entry for entry in stats["jobs"] if entry["job_name"] == "email")
    assert email == {"job_name": "email", "processed": 8, "failed": 2, "error_rate": 0.2}


def test_retry_dead_job_requeues_it_and_a_second_try_is_a_404(web: FlaskClient, client: Client, placed: Placed) -> None:
    path = f"/api/retry_dead_job/{placed.dead.died_at}/{placed.dead.id}"
    response = post(web, path)
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert client.dead_jobs() == ([], 0)
    assert placed.dead.id in [job.id for job in client.peek("email", 5)]
    again = post(web, path)
    assert again.status_code == 404 and again.mimetype == "application/json"
    assert placed.dead.id in again.get_json()["error"]


@pytest.mark.parametrize(
    ("path", "remaining"),
    [
        ("/api/delete_dead_job/{dead.died_at}/{dead.id}", lambda client: client.dead_jobs()[1]),
        ("/api/delete_retry_job/{retry.retry_at}/{retry.id}", lambda client: client.retry_jobs()[1]),
        ("/api/delete_scheduled_job/{scheduled.run_at}/{scheduled.id}", lambda client: client.scheduled_jobs()[1]),
    ],
)
def test_deletes_remove_one_job_then_404(
    web: FlaskClient, client: Client, placed: Placed, path: str, remaining: Any
) -> None:
    url = path.format(dead=placed.dead, retry=placed.retry, scheduled=placed.scheduled)
    assert remaining(client) == 1
    assert post(web, url).get_json() == {"status": "ok"}
    assert remaining(client) == 0
    assert post(web, url).status_code == 404
    wrong_score = url.replace(f"/{url.split('/')[3]}/", "/12345/")
    assert post(web, wrong_score).status_code == 404


def test_a_scheduled_job_whose_id_holds_slashes_and_spaces_can_be_deleted(
    web: FlaskClient, client: Client, redis_client: redis.Redis, namespace: str
) -> None:
    periodic = Job(name="cleanup", id="periodic:cleanup:*/5 * * * *:1800000000", enqueued_at=1_800_000_000)
    file_job(redis_client, namespace, "scheduled", periodic, 1_800_000_000)
    form = row_form(web.get("/scheduled/cron").get_data(as_text=True), periodic.id, "Delete")
    assert form.action == "/api/delete_scheduled_job", "the id travels in the form body, not the URL"
    assert (form.fields["run_at"], form.fields["job_id"]) == ("1800000000", periodic.id)
    assert form.submit(web).status_code == 303
    assert client.scheduled_jobs() == ([], 0)
    file_job(redis_client, namespace, "scheduled", periodic, 1_800_000_000)
    encoded = "/api/delete_scheduled_job/1800000000/" + quote(periodic.id, safe="")
    assert post(web, encoded).get_json() == {"status": "ok"}, "gocraft/work's path form, percent-encoded"
    assert client.scheduled_jobs() == ([], 0)


def test_retry_all_and_delete_all_dead_jobs_say_how_many(
    web: FlaskClient, client: Client, redis_client: redis.Redis, namespace: str, placed: Placed
) -> None:
    for n in range(3):
        file_job(redis_client, namespace, "dead", failed_job("sms", placed.now, 4, {"n": n}), placed.now - n)
    assert post(web, "/api/retry_all_dead_jobs").get_json() == {"status": "ok", "count": 4}
    assert client.dead_jobs()[1] == 0 and len(client.peek("sms", 10)) == 3
    file_job(redis_client, namespace, "dead", failed_job("sms", placed.now, 4), placed.now)
    assert post(web, "/api/delete_all_dead_jobs").get_json() == {"status": "ok", "count": 1}
    assert post(web, "/api/delete_all_dead_jobs").get_json() == {"status": "ok", "count": 0}


def test_pause_and_unpause(web: FlaskClient, client: Client, placed: Placed) -> None:
    assert post(web, "/api/pause/email").get_json() == {"status": "ok"}
    assert client.is_paused("email")
    assert [queue["paused"] for queue in get_json(web, "/api/queues") if queue["job_name"] == "email"] == [True]
    assert post(web, "/api/unpause/email").get_json() == {"status": "ok"}
    assert not client.is_paused("email")


@pytest.mark.parametrize("name", ["with%20space", "a:b", "tab%09"])
def test_pausing_a_name_that_cannot_be_a_queue_is_a_400(web: FlaskClient, client: Client, name: str) -> None:
    response = post(web, f"/api/pause/{name}")
    assert response.status_code == 400 and "job name" in response.get_json()["error"]


def test_unknown_api_paths_are_json_404s(web: FlaskClient) -> None:
    answer = get_json(web, "/api/nothing_here", status=404)
    assert answer["status"] == 404 and answer["error"]
