"""`keep_result=SECONDS` on real Redis: a successful run's JSON return value is stored at `result:<id>` with the
ack (state "done"), expires after SECONDS, and a return value JSON cannot hold fails the run with a clear error."""

from __future__ import annotations

import json

import redis

from integration.namespace_view import NamespaceView
from integration.pool_factory import PoolFactory
from support import wait_until
from workq import Enqueuer, Job
from workq.keys import Keys


def test_a_kept_result_is_stored_with_the_ack_as_done_and_expires(
    make_pool: PoolFactory, enqueuer: Enqueuer, redis_client: redis.Redis, namespace: str
) -> None:
    pool = make_pool()
    pool.job("report", lambda job: {"rows": job.arg_int("rows"), "name": "ünïcode", "ok": True}, keep_result=2)
    pool.job("plain", lambda job: {"ignored": True})
    pool.start()
    kept, plain = enqueuer.enqueue("report", {"rows": 3}), enqueuer.enqueue("plain", {})
    pool.drain(timeout=10)

    result_key = Keys(namespace).result(kept.id)
    record = json.loads(redis_client.get(result_key) or b"null")
    assert record["state"] == "done" and record["job_name"] == "report"
    assert record["result"] == {"rows": 3, "name": "ünïcode", "ok": True}
    assert (record["fails"], record["last_err"]) == (0, "")
    assert record["updated_at"] > 0
    assert 0 < redis_client.pttl(result_key) <= 2000
    assert redis_client.exists(Keys(namespace).result(plain.id)) == 0, "no keep_result, nothing stored"
    wait_until(lambda: redis_client.exists(result_key) == 0, timeout=10, what="the result to expire")


def test_a_result_of_a_run_that_failed_before_carries_its_fails(
    make_pool: PoolFactory, enqueuer: Enqueuer, redis_client: redis.Redis, namespace: str
) -> None:
    def flaky(job: Job) -> list[int]:
        if job.fails == 0:
            raise RuntimeError("first try fails")
        return [job.fails]

    pool = make_pool()
    pool.job("flaky", flaky, keep_result=60, backoff=lambda job: 0)
    pool.start()
    job = enqueuer.enqueue("flaky", {})
    raw = wait_until(lambda: redis_client.get(Keys(namespace).result(job.id)), timeout=15, what="the kept result")
    record = json.loads(raw)
    assert (record["result"], record["fails"]) == ([1], 1)
    assert "first try fails" in record["last_err"]


def test_a_return_value_json_cannot_hold_fails_the_run_clearly_and_is_retried(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, redis_client: redis.Redis, namespace: str
) -> None:
    pool = make_pool()
    pool.job("sets", lambda job: {1, 2}, keep_result=60, max_fails=2, backoff=lambda job: 0)
    pool.job("nan", lambda job: float("nan"), keep_result=60, max_fails=1)
    pool.start()
    sets, nan = enqueuer.enqueue("sets", {}), enqueuer.enqueue("nan", {})
    dead = wait_until(lambda: len(view.dead()) == 2 and view.dead(), timeout=20, what="both jobs dead")

    errors = {filed.fields["id"]: filed.fields for filed in dead}
    assert errors[sets.id]["fails"] == 2, "a failure like any other: retried, then dead"
    assert "returned a set, which JSON cannot hold" in errors[sets.id]["err"]
    assert "keep_result" in errors[sets.id]["err"]
    assert "returned a float, which JSON cannot hold" in errors[nan.id]["err"]
    assert redis_client.exists(Keys(namespace).result(sets.id), Keys(namespace).result(nan.id)) == 0
