"""Job control on real Redis: cancel by id in every state, deleting one queued job, purging a queue, a job's status
and waiting for its result."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import redis

from integration.interruptible import Interruptible
from integration.namespace_view import NamespaceView
from integration.pool_factory import PoolFactory
from support import wait_until
from workq import Client, Enqueuer, Job, JobFailed, JobNotFound, JobStatus, NotDeleted, job_control, job_lookup
from workq.job_lookup import Location
from workq.scripts import Scripts

NOW = int(time.time())


@pytest.fixture
def client(namespace: str, redis_client: redis.Redis) -> Client:
    return Client(namespace, redis_client)


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> int:
    """Pages of 7 members, so a few dozen jobs span many pages and their boundaries."""
    monkeypatch.setattr(job_lookup, "CHUNK", 7)
    monkeypatch.setattr(job_control, "CHUNK", 7)
    return 7


def file_job(redis_client: redis.Redis, namespace: str, zset: str, job: Job, score: int) -> None:
    redis_client.zadd(f"{namespace}:{zset}", {job.to_json(): score})


def failed(name: str, fails: int, err: str = "RuntimeError: boom") -> Job:
    return Job(name=name, enqueued_at=NOW - 300, args={"n": fails}, fails=fails, last_err=err, failed_at=NOW - 5)


def record(redis_client: redis.Redis, namespace: str, job_id: str) -> dict[str, Any] | None:
    raw = redis_client.get(f"{namespace}:result:{job_id}")
    return None if raw is None else dict(json.loads(raw))


def queued_ids(view: NamespaceView, name: str) -> list[str]:
    return [json.loads(member)["id"] for member in view.queued(name)]


# --- cancel ---------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("small_pages")
@pytest.mark.parametrize("position", [0, 6, 7, 20, 49])
def test_cancel_finds_a_queued_job_on_any_page_and_removes_only_it(
    client: Client, enqueuer: Enqueuer, view: NamespaceView, *, redis_client: redis.Redis, namespace: str, position: int
) -> None:
    jobs = enqueuer.enqueue_many("email", [{"n": index} for index in range(50)])
    enqueuer.enqueue("report", {})
    before = queued_ids(view, "email")
    target = before[position]
    assert client.cancel(target) == "queued"
    assert queued_ids(view, "email") == [job_id for job_id in before if job_id != target]
    assert len(jobs) == 50 and len(view.queued("report")) == 1
    kept = record(redis_client, namespace, target)
    assert kept is not None and kept["state"] == "cancelled" and kept["job_name"] == "email"
    assert 86_000 < redis_client.ttl(f"{namespace}:result:{target}") <= 86_400


@pytest.mark.parametrize("zset", ["scheduled", "retry", "dead"])
def test_cancel_removes_a_job_from_its_sorted_set_and_says_where_it_was(
    client: Client, redis_client: redis.Redis, namespace: str, view: NamespaceView, zset: str
) -> None:
    other, target = failed("email", 1), failed("email", 2)
    for job in (other, target):
        file_job(redis_client, namespace, zset, job, NOW + 60)
    assert client.cancel(target.id) == zset
    assert [filed.fields["id"] for filed in getattr(view, zset)()] == [other.id]
    status = client.job_status(target.id)
    assert status is not None and status.state == "cancelled" and status.fails == 2
    assert zset in status.last_err and "cancelled" in status.last_err


def test_cancelling_a_pending_unique_job_releases_its_lock(client: Client, enqueuer: Enqueuer) -> None:
    queued = enqueuer.enqueue_unique("email", {"to": "a"})
    scheduled = enqueuer.enqueue_unique_in("email", 3600, {"to": "b"})
    assert queued is not None and scheduled is not None
    assert enqueuer.enqueue_unique("email", {"to": "a"}) is None
    assert client.cancel(queued.id) == "queued"
    assert client.cancel(scheduled.id) == "scheduled"
    assert enqueuer.enqueue_unique("email", {"to": "a"}) is not None
    assert enqueuer.enqueue_unique_in("email", 3600, {"to": "b"}) is not None


def test_cancel_of_an_unknown_or_finished_job_raises_job_not_found(client: Client, enqueuer: Enqueuer) -> None:
    with pytest.raises(JobNotFound, match="no job nope"):
        client.cancel("nope")
    job = enqueuer.enqueue("email", {})
    client.cancel(job.id)
    with pytest.raises(JobNotFound, match="already cancelled"):
        client.cancel(job.id)
    done = {"state": "done", "job_name": "email", "result": 1, "fails": 0, "last_err": "", "updated_at": NOW}
    client.redis.set(client.keys.result("finished"), json.dumps(done))
    with pytest.raises(JobNotFound, match="already done"):
        client.cancel("finished")


def test_cancel_looks_again_when_the_job_moved_before_it_was_removed(
    client: Client, enqueuer: Enqueuer, redis_client: redis.Redis, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = enqueuer.enqueue("email", {})
    real_find = job_control.find_job
    calls: list[Location | None] = []

    def find_then_move(*args: Any) -> Location | None:
        found = real_find(*args)
        if not calls:  # the requeuer-like move happens between the read and the removal
            redis_client.lrem(f"{namespace}:jobs:email", 1, job.to_json())
            redis_client.zadd(f"{namespace}:scheduled", {job.to_json(): NOW + 60})
        calls.append(found)
        return found

    monkeypatch.setattr(job_control, "find_job", find_then_move)
    assert client.cancel(job.id) == "scheduled"
    assert [found.state for found in calls if found is not None] == ["queued", "scheduled"]
    assert redis_client.zcard(f"{namespace}:scheduled") == 0


def test_cancel_of_a_running_job_requests_it_from_the_pool_on_the_channel_and_the_key(
    client: Client,
    enqueuer: Enqueuer,
    make_pool: PoolFactory,
    *,
    release: threading.Event,
    redis_client: redis.Redis,
    namespace: str,
) -> None:
    started = threading.Event()

    def block(job: Job) -> None:
        started.set()
        release.wait(30)

    pool = make_pool(concurrency=1)
    pool.job("slow", block, max_fails=1)
    subscriber = redis_client.pubsub()
    subscriber.subscribe(f"{namespace}:cancel")
    wait_until(lambda: subscriber.get_message(timeout=0.1), what="the subscription to be confirmed")
    pool.start()
    job = enqueuer.enqueue("slow", {})
    assert started.wait(20)
    status = client.job_status(job.id)
    assert status is not None and (status.state, status.job_name) == ("running", "slow")
    assert client.cancel(job.id) == "running"
    message = wait_until(lambda: subscriber.get_message(timeout=0.5), timeout=10, what="the cancel message")
    assert message["channel"] == f"{namespace}:cancel".encode() and message["data"] == job.id.encode()
    subscriber.close()
    release.set()


def test_a_cancel_request_is_made_only_while_the_job_is_in_progress(
    client: Client, redis_client: redis.Redis, namespace: str
) -> None:
    """The script checks the in-progress list itself: a run that ended between the lookup and the request is not
    reported as cancelled (and no request lingers)."""
    scripts = Scripts.register(redis_client)
    in_progress = f"{namespace}:jobs:email:pool1:inprogress"
    job = Job(name="email", enqueued_at=NOW)
    request = f"{namespace}:cancel:{job.id}"
    args = [job.to_json(), 86_400, f"{namespace}:cancel", job.id]
    assert scripts.cancel_running(keys=[in_progress, request], args=args) == 0
    assert not redis_client.exists(request)
    redis_client.lpush(in_progress, job.to_json())
    assert scripts.cancel_running(keys=[in_progress, request], args=args) == 1
    assert 86_000 < redis_client.ttl(request) <= 86_400


# --- delete one queued job, purge ------------------------------------------------------------------------------


@pytest.mark.usefixtures("small_pages")
def test_delete_queued_job_removes_that_job_only(client: Client, enqueuer: Enqueuer, view: NamespaceView) -> None:
    enqueuer.enqueue_many("email", [{"n": index} for index in range(30)])
    before = queued_ids(view, "email")
    client.delete_queued_job("email", before[15])
    assert queued_ids(view, "email") == before[:15] + before[16:]
    with pytest.raises(NotDeleted):
        client.delete_queued_job("email", before[15])
    with pytest.raises(NotDeleted):
        client.delete_queued_job("report", before[0])


def test_delete_queued_job_releases_the_unique_lock(client: Client, enqueuer: Enqueuer) -> None:
    job = enqueuer.enqueue_unique("email", {"to": "a"})
    assert job is not None
    client.delete_queued_job("email", job.id)
    assert enqueuer.enqueue_unique("email", {"to": "a"}) is not None


@pytest.mark.usefixtures("small_pages")
def test_purge_removes_every_queued_job_and_releases_their_unique_locks_only(
    client: Client, enqueuer: Enqueuer, view: NamespaceView, redis_client: redis.Redis, namespace: str
) -> None:
    enqueuer.enqueue_many("email", [{"n": index} for index in range(20)])
    for index in range(5):
        assert enqueuer.enqueue_unique("email", {"u": index}) is not None
    assert enqueuer.enqueue_unique_in("email", 3600, {"u": "later"}) is not None
    enqueuer.enqueue("report", {})
    assert client.purge("email") == 25
    assert view.queued("email") == [] and len(view.queued("report")) == 1
    assert all(enqueuer.enqueue_unique("email", {"u": index}) is not None for index in range(5))
    assert enqueuer.enqueue_unique_in("email", 3600, {"u": "later"}) is None, "the scheduled job keeps its lock"
    assert list(redis_client.scan_iter(match=f"{namespace}:purged:*")) == []
    assert client.purge("nothing") == 0


def test_purge_refuses_a_queue_key_that_is_not_a_list(
    client: Client, redis_client: redis.Redis, namespace: str
) -> None:
    redis_client.set(f"{namespace}:jobs:email", "x")
    with pytest.raises(redis.ResponseError, match="not a queue"):
        client.purge("email")
    assert redis_client.get(f"{namespace}:jobs:email") == b"x"


# --- status and results ----------------------------------------------------------------------------------------


def test_job_status_in_every_waiting_state(
    client: Client, enqueuer: Enqueuer, redis_client: redis.Redis, namespace: str
) -> None:
    queued = enqueuer.enqueue("email", {})
    scheduled = enqueuer.enqueue_in("email", 3600, {})
    retry, dead = failed("email", 1, "ValueError: x"), failed("email", 4, "ValueError: y")
    file_job(redis_client, namespace, "retry", retry, NOW + 60)
    file_job(redis_client, namespace, "dead", dead, NOW - 5)
    assert client.job_status(queued.id) == JobStatus(queued.id, "email", "queued", 0, "", None, queued.enqueued_at)
    assert client.job_status(scheduled.id) == JobStatus(
        scheduled.id, "email", "scheduled", 0, "", None, scheduled.enqueued_at
    )
    assert client.job_status(retry.id) == JobStatus(retry.id, "email", "retry", 1, "ValueError: x", None, NOW - 5)
    assert client.job_status(dead.id) == JobStatus(dead.id, "email", "dead", 4, "ValueError: y", None, NOW - 5)
    assert client.job_status("nope") is None


def test_job_status_reads_a_done_record_and_prefers_a_current_place_over_an_old_record(
    client: Client, enqueuer: Enqueuer, redis_client: redis.Redis, namespace: str
) -> None:
    done = {"state": "done", "job_name": "email", "result": {"sent": 3}, "fails": 0, "last_err": "", "updated_at": NOW}
    redis_client.set(f"{namespace}:result:j1", json.dumps(done))
    assert client.job_status("j1") == JobStatus("j1", "email", "done", 0, "", {"sent": 3}, NOW)
    requeued = enqueuer.enqueue("email", {})
    stale = {**done, "state": "dead", "result": None, "last_err": "RuntimeError: boom"}
    redis_client.set(f"{namespace}:result:{requeued.id}", json.dumps(stale))
    status = client.job_status(requeued.id)
    assert status is not None and status.state == "queued"
    redis_client.set(f"{namespace}:result:j2", "not json")
    assert client.job_status("j2") is None


def test_wait_result_returns_the_result_once_done(
    client: Client, enqueuer: Enqueuer, redis_client: redis.Redis, namespace: str
) -> None:
    job = enqueuer.enqueue("email", {})

    def finish() -> None:
        time.sleep(0.3)
        redis_client.lrem(f"{namespace}:jobs:email", 1, job.to_json())
        done = {"state": "done", "job_name": "email", "result": [1, "a"], "fails": 0, "last_err": "", "updated_at": NOW}
        redis_client.set(f"{namespace}:result:{job.id}", json.dumps(done))

    worker = threading.Thread(target=finish)
    worker.start()
    assert client.wait_result(job.id, timeout=30) == [1, "a"]
    worker.join()


def test_wait_result_raises_job_failed_once_the_job_dies_or_is_cancelled(
    client: Client, enqueuer: Enqueuer, redis_client: redis.Redis, namespace: str
) -> None:
    job = enqueuer.enqueue("email", {})

    def die() -> None:
        time.sleep(0.3)
        redis_client.lrem(f"{namespace}:jobs:email", 1, job.to_json())
        job.fails, job.last_err = 1, "RuntimeError: smtp down"
        file_job(redis_client, namespace, "dead", job, int(time.time()))

    worker = threading.Thread(target=die)
    worker.start()
    with pytest.raises(JobFailed, match="smtp down") as failure:
        client.wait_result(job.id, timeout=30)
    assert failure.value.last_err == "RuntimeError: smtp down"
    worker.join()
    other = enqueuer.enqueue("email", {})
    client.cancel(other.id)
    with pytest.raises(JobFailed, match="cancelled while queued"):
        client.wait_result(other.id, timeout=30)


def test_wait_result_times_out_and_refuses_an_unknown_job(client: Client, enqueuer: Enqueuer) -> None:
    job = enqueuer.enqueue("email", {})
    began = time.monotonic()
    with pytest.raises(TimeoutError, match="still queued"):
        client.wait_result(job.id, timeout=0.5)
    assert time.monotonic() - began >= 0.5
    with pytest.raises(JobNotFound, match="keep_result"):
        client.wait_result("nope", timeout=5)
    with pytest.raises(ValueError):
        client.wait_result(job.id, timeout=float("nan"))


def test_queued_jobs_pages_a_queue_next_to_run_first(client: Client, enqueuer: Enqueuer) -> None:
    jobs = enqueuer.enqueue_many("email", [{"n": index} for index in range(45)])
    first, total = client.queued_jobs("email")
    third, _ = client.queued_jobs("email", 3)
    assert total == 45
    assert [job.id for job in first] == [job.id for job in jobs[:20]]
    assert [job.id for job in third] == [job.id for job in jobs[40:]]
    assert client.queued_jobs("email", 4) == ([], 45)


# --- end to end, with the worker side of issue 13 (interrupting runs, keep_result) -----------------------------

WORKER_SIDE = pytest.mark.skipif(
    not hasattr(Job, "cancelled"),
    reason="needs the worker side of issue 13 (Job.cancelled, pools that interrupt cancelled runs, keep_result)",
)


@WORKER_SIDE
def test_cancel_of_a_running_job_interrupts_it_and_files_it_dead_cancelled(
    client: Client, enqueuer: Enqueuer, make_pool: PoolFactory, *, redis_client: redis.Redis
) -> None:
    handler = Interruptible()
    pool = make_pool(concurrency=1)
    pool.job("long", handler, max_fails=5)
    pool.start()
    job = enqueuer.enqueue("long", {})
    assert handler.started.wait(20)
    requested_at = time.monotonic()
    assert client.cancel(job.id) == "running"
    assert handler.ended.wait(10), "the run was not interrupted"
    print(f"cancel latency (request to handler interrupted): {1000 * (handler.ended_at - requested_at):.1f} ms")
    assert handler.raised == "Cancelled"

    def cancelled() -> JobStatus | None:
        status = client.job_status(job.id)
        return status if status is not None and status.state == "cancelled" else None

    status = wait_until(cancelled, timeout=10, what="the job to be recorded cancelled")
    assert "cancelled" in status.last_err and status.fails <= 1
    assert [dead.id for dead in client.dead_jobs()[0]] == [job.id], "filed in the dead set, where it can be retried"
    with pytest.raises(JobFailed, match="cancelled"):
        client.wait_result(job.id, timeout=10)
    assert not redis_client.exists(client.keys.cancel_request(job.id)), "the request is cleared once acted on"
    assert client.retry_jobs() == ([], 0), "a cancelled job is never retried"

    client.pause("long")  # the retried job stays queued
    [dead] = client.dead_jobs()[0]
    client.retry_dead_job(dead.died_at, job.id)
    again = client.job_status(job.id)
    assert again is not None and again.state == "queued", "the run's cancelled record no longer stands"
    assert client.cancel(job.id) == "queued", "a retried job can be cancelled again"


@WORKER_SIDE
def test_wait_result_returns_what_a_keep_result_handler_returned(
    client: Client, enqueuer: Enqueuer, make_pool: PoolFactory
) -> None:
    pool = make_pool(concurrency=1)
    pool.job("sum", lambda job: {"sum": job.arg_int("a") + job.arg_int("b")}, keep_result=60)
    pool.start()
    job = enqueuer.enqueue("sum", {"a": 2, "b": 3})
    assert client.wait_result(job.id, timeout=30) == {"sum": 5}
    status = client.job_status(job.id)
    assert status is not None and (status.state, status.result) == ("done", {"sum": 5})
