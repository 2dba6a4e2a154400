"""The charts page and its JSON: real pools run jobs on a real Redis; the page draws them as inline SVG."""

from __future__ import annotations

import re

import redis
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from support import wait_until
from web.conftest import PoolStarter
from web.sample_jobs import CSRF, ESCAPED_SCRIPT, SCRIPT
from workq import Client, Enqueuer, Job
from workq.keys import Keys
from workq.throughput import CHART_DAYS, CHART_MINUTES
from workq.web import create_app
from workq.web.security import LOOPBACK_HOSTS


def fail(job: Job) -> None:
    raise RuntimeError("always")


def test_runs_of_live_pools_show_in_the_charts_data(
    web: FlaskClient, start_pool: PoolStarter, namespace: str, redis_url: str
) -> None:
    pool = start_pool({"ok": lambda job: None, "bad": fail})
    enqueuer = Enqueuer(namespace, redis_url)
    enqueuer.enqueue_many("ok", [{"n": n} for n in range(5)])
    enqueuer.enqueue_many("bad", [{"n": n} for n in range(2)])

    def minute_counts() -> tuple[int, int, int]:
        minutes = web.get("/api/charts").get_json()["minutes"]
        if set(minutes) != {"", "ok", "bad"}:
            return 0, 0, 0
        return sum(minutes["ok"]["processed"]), sum(minutes["bad"]["failed"]), sum(minutes[""]["processed"])

    pool.drain(timeout=10)
    pool.stop()  # the last tally is written as the pool stops
    assert wait_until(lambda: minute_counts() == (5, 2, 5), timeout=10, what="the tallies in the chart data")
    data = web.get("/api/charts").get_json()
    assert len(data["minutes"][""]["labels"]) == CHART_MINUTES
    assert len(data["days"]["ok"]["labels"]) == CHART_DAYS
    assert data["days"]["ok"]["processed"][-1] == 5, "days come from the ack script's daily counts"
    assert data["days"]["bad"]["failed"][-1] == 2


def test_the_page_draws_bars_for_every_name_and_the_total_without_inline_style(
    web: FlaskClient, redis_client: redis.Redis, namespace: str
) -> None:
    keys = Keys(namespace)
    redis_client.sadd(keys.known_jobs, "email", SCRIPT)
    now = int(redis_client.time()[0])
    redis_client.hset(keys.minutes("email", now), mapping={f"processed:{now // 60 % 60:02d}": 12, "failed:00": 0})

    response = web.get("/charts")

    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert text.count('<svg class="chart-svg"') == 2 * 3, "an hour and a week for the total and both names"
    assert re.search(r"<title>\d\d:\d\d: 12 processed, 0 failed</title>", text)
    assert SCRIPT not in text and ESCAPED_SCRIPT in text
    assert "style=" not in text, "the CSP forbids inline styles"
    assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text


def test_an_empty_namespace_says_so(web: FlaskClient) -> None:
    text = web.get("/charts").get_data(as_text=True)
    assert "No job names yet." in text and '<svg class="chart-svg"' not in text


def test_metrics_give_namespace_wide_figures_from_redis(
    web: FlaskClient, start_pool: PoolStarter, namespace: str, redis_url: str
) -> None:
    pool = start_pool({"ok": lambda job: None, "bad": fail})
    enqueuer = Enqueuer(namespace, redis_url)
    enqueuer.enqueue_many("ok", [{"n": n} for n in range(4)])
    enqueuer.enqueue("bad")
    enqueuer.enqueue_in("ok", 600)
    pool.drain(timeout=10)
    pool.stop()

    response = web.get("/metrics")

    assert response.status_code == 200 and response.mimetype == "text/plain"
    samples = {
        (sample.name, sample.labels.get("job_name", "")): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }
    assert samples[("workq_jobs_processed_total", "ok")] == 4
    assert samples[("workq_jobs_failed_total", "bad")] == 1
    assert samples[("workq_queue_length", "ok")] == 0
    assert samples[("workq_scheduled_jobs", "")] == 1 and samples[("workq_dead_jobs", "")] == 1
    assert samples[("workq_worker_pools", "")] == 0, "the stopped pool deregistered"


def test_metrics_need_the_same_credentials_as_the_pages(client: Client) -> None:
    web = create_app(client, auth_token="s3cret", csrf_token=CSRF, allowed_hosts=LOOPBACK_HOSTS).test_client()

    assert web.get("/metrics").status_code == 401
    assert web.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert web.get("/metrics", headers={"Host": "evil.example"}).status_code == 400
