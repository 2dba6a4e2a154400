"""Workers in a pool on fakeredis: success acks, failures retry then die, Retry reschedules, bad bytes go dead."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from typing import cast

import fakeredis
import pytest

from support import wait_until
from workq.errors import Retry
from workq.job import Job
from workq.keys import Keys
from workq.middleware import Next
from workq.worker_pool import WorkerPool

NOW = 1_700_000_000


@pytest.fixture
def pool(fake_redis: fakeredis.FakeRedis, namespace: str) -> Iterator[WorkerPool]:
    worker_pool = WorkerPool(namespace, fake_redis, concurrency=1, clock=lambda: NOW + 0.5, rng=random.Random(3))
    yield worker_pool
    worker_pool.stop()


def run_until_drained(pool: WorkerPool) -> None:
    pool.start()
    pool.drain(timeout=5)


def only_member(client: fakeredis.FakeRedis, zset: str) -> tuple[dict[str, object], float]:
    [(raw, score)] = cast(list[tuple[bytes, float]], client.zrange(zset, 0, -1, withscores=True))
    return json.loads(raw), score


def assert_nothing_in_flight(client: fakeredis.FakeRedis, keys: Keys, pool: WorkerPool, name: str) -> None:
    assert client.llen(keys.in_progress(name, pool.pool_id)) == 0
    assert client.get(keys.lock(name)) == b"0"
    assert client.hgetall(keys.lock_info(name)) == {}


def test_a_successful_job_runs_once_and_is_acknowledged(
    pool: WorkerPool, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    seen: list[Job] = []
    handler = pool.job("send_email", seen.append)
    enqueued = handler.enqueue(address="a@b.c")
    run_until_drained(pool)
    assert [(job.id, job.arg_str("address")) for job in seen] == [(enqueued.id, "a@b.c")]
    assert fake_redis.llen(keys.queue("send_email")) == 0
    assert_nothing_in_flight(fake_redis, keys, pool, "send_email")
    assert fake_redis.zcard(keys.retry) == fake_redis.zcard(keys.dead) == 0


def test_every_job_runs_exactly_once_with_several_workers(fake_redis: fakeredis.FakeRedis, namespace: str) -> None:
    pool = WorkerPool(namespace, fake_redis, concurrency=4, clock=lambda: NOW)
    seen: list[str] = []
    lock = threading.Lock()

    def record(job: Job) -> None:
        with lock:
            seen.append(job.id)

    handler = pool.job("x", record)
    jobs = pool.enqueuer.enqueue_many("x", [{"n": n} for n in range(50)])
    try:
        run_until_drained(pool)
    finally:
        pool.stop()
    assert sorted(seen) == sorted(job.id for job in jobs)
    assert handler.name == "x"


def test_a_failing_job_goes_to_retry_with_its_failure_recorded(
    pool: WorkerPool, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    def fail(job: Job) -> None:
        raise ValueError("smtp down")

    enqueued = pool.job("x", fail, backoff=lambda job: 10).enqueue()
    run_until_drained(pool)
    retried, retry_at = only_member(fake_redis, keys.retry)
    assert retry_at == NOW + 11, "no earlier than 10 s after the failure at NOW + 0.5"
    assert (retried["id"], retried["fails"], retried["failed_at"]) == (enqueued.id, 1, NOW)
    assert retried["err"] == "ValueError: smtp down"
    assert_nothing_in_flight(fake_redis, keys, pool, "x")


def test_default_backoff_is_used_without_one(pool: WorkerPool, fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    pool.job("x", lambda job: 1 / 0).enqueue()
    run_until_drained(pool)
    _, retry_at = only_member(fake_redis, keys.retry)
    assert NOW + 16 <= retry_at <= NOW + 74


@pytest.mark.parametrize("backoff_result", [-5, None, "10", float("nan")])
def test_a_bad_backoff_result_falls_back_to_the_default(
    pool: WorkerPool, fake_redis: fakeredis.FakeRedis, keys: Keys, backoff_result: object
) -> None:
    pool.job("x", lambda job: 1 / 0, backoff=lambda job: backoff_result).enqueue()  # type: ignore[arg-type,return-value]
    run_until_drained(pool)
    _, retry_at = only_member(fake_redis, keys.retry)
    assert NOW + 16 <= retry_at <= NOW + 74


def test_a_raising_backoff_falls_back_to_the_default(
    pool: WorkerPool, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    def broken(job: Job) -> int:
        raise RuntimeError("bad backoff")

    pool.job("x", lambda job: 1 / 0, backoff=broken).enqueue()
    run_until_drained(pool)
    _, retry_at = only_member(fake_redis, keys.retry)
    assert NOW + 16 <= retry_at <= NOW + 74


def test_max_fails_one_goes_straight_to_dead(pool: WorkerPool, fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    pool.job("x", lambda job: 1 / 0, max_fails=1).enqueue()
    run_until_drained(pool)
    dead, died_at = only_member(fake_redis, keys.dead)
    assert died_at == NOW
    assert (dead["fails"], dead["failed_at"]) == (1, NOW)
    assert fake_redis.zcard(keys.retry) == 0


def test_the_last_allowed_failure_goes_to_dead(pool: WorkerPool, fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    pool.job("x", lambda job: 1 / 0, max_fails=4)
    fake_redis.lpush(keys.queue("x"), Job(name="x", id="j", enqueued_at=1, fails=3).to_json())
    run_until_drained(pool)
    dead, _ = only_member(fake_redis, keys.dead)
    assert (dead["id"], dead["fails"]) == ("j", 4)


def test_skip_dead_discards_a_job_out_of_retries(pool: WorkerPool, fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    pool.job("x", lambda job: 1 / 0, max_fails=1, skip_dead=True).enqueue()
    run_until_drained(pool)
    assert fake_redis.zcard(keys.dead) == fake_redis.zcard(keys.retry) == 0
    assert_nothing_in_flight(fake_redis, keys, pool, "x")


def test_raising_retry_reschedules_without_counting_a_failure(
    pool: WorkerPool, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    def later(job: Job) -> None:
        raise Retry(in_seconds=30)

    enqueued = pool.job("x", later).enqueue(a=1)
    run_until_drained(pool)
    scheduled, run_at = only_member(fake_redis, keys.scheduled)
    assert run_at == NOW + 31  # ceil(now + 0.5 + 30)
    assert scheduled == {"name": "x", "id": enqueued.id, "t": NOW, "args": {"a": 1}}
    assert fake_redis.zcard(keys.retry) == 0


def test_malformed_bytes_in_a_queue_go_dead_with_the_payload(
    pool: WorkerPool, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    handled: list[Job] = []
    pool.job("x", handled.append)
    fake_redis.lpush(keys.queue("x"), b"{not a job")
    run_until_drained(pool)
    dead, died_at = only_member(fake_redis, keys.dead)
    assert died_at == NOW
    assert dead["name"] == "x" and dead["payload"] == "{not a job"
    assert "malformed job payload in queue x" in str(dead["err"])
    assert handled == []
    assert_nothing_in_flight(fake_redis, keys, pool, "x")


def test_a_job_with_an_out_of_range_time_goes_dead_and_is_not_left_in_progress(
    pool: WorkerPool, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    pool.job("x", lambda job: None)
    fake_redis.lpush(keys.queue("x"), b'{"name":"x","id":"i","t":1e400,"args":null}')
    fake_redis.lpush(keys.queue("x"), Job(name="x", id="good", enqueued_at=1).to_json())
    run_until_drained(pool)
    assert_nothing_in_flight(fake_redis, keys, pool, "x")
    assert fake_redis.zcard(keys.dead) == 1


def test_middlewares_wrap_the_handler_in_registration_order(pool: WorkerPool) -> None:
    log: list[str] = []

    @pool.middleware
    def outer(job: Job, next: Next) -> None:
        log.append("outer")
        next()
        log.append("outer done")

    @pool.middleware
    def inner(job: Job, next: Next) -> None:
        log.append("inner")
        next()

    pool.job("x", lambda job: log.append("handler")).enqueue()
    run_until_drained(pool)
    assert log == ["outer", "inner", "handler", "outer done"]


def test_a_middleware_that_skips_next_completes_the_job(
    pool: WorkerPool, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    handled: list[Job] = []
    pool.middleware(lambda job, next: None)
    pool.job("x", handled.append).enqueue()
    run_until_drained(pool)
    assert handled == []
    assert fake_redis.zcard(keys.retry) == fake_redis.zcard(keys.dead) == 0
    assert_nothing_in_flight(fake_redis, keys, pool, "x")


def test_a_raising_middleware_fails_the_job(pool: WorkerPool, fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    def refuse(job: Job, next: Next) -> None:
        raise PermissionError("not today")

    pool.middleware(refuse)
    pool.job("x", lambda job: None, backoff=lambda job: 5).enqueue()
    run_until_drained(pool)
    retried, _ = only_member(fake_redis, keys.retry)
    assert retried["err"] == "PermissionError: not today"


def test_keyboard_interrupt_returns_the_job_and_stops_the_pool(
    pool: WorkerPool, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    def interrupted(job: Job) -> None:
        raise KeyboardInterrupt

    enqueued = pool.job("x", interrupted).enqueue()
    pool.start()
    assert pool.wait_for_stop_request(timeout=5)
    pool.stop()
    assert fake_redis.lrange(keys.queue("x"), 0, -1) == [enqueued.to_json().encode()]
    assert_nothing_in_flight(fake_redis, keys, pool, "x")
    assert fake_redis.zcard(keys.retry) == fake_redis.zcard(keys.dead) == 0


def test_stop_waits_for_the_job_in_hand(pool: WorkerPool, fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    running, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def slow(job: Job) -> None:
        running.set()
        release.wait(5)
        finished.append(job.id)

    enqueued = pool.job("x", slow).enqueue()
    pool.start()
    assert running.wait(5)
    stopper = threading.Thread(target=pool.stop)
    stopper.start()
    wait_until(lambda: pool.stopping, timeout=5)
    assert stopper.is_alive() and finished == []
    release.set()
    stopper.join(5)
    assert not stopper.is_alive()
    assert finished == [enqueued.id]
    assert_nothing_in_flight(fake_redis, keys, pool, "x")


# --- unique jobs -------------------------------------------------------------------------------------------


def test_starting_a_unique_job_releases_its_lock(pool: WorkerPool, fake_redis: fakeredis.FakeRedis) -> None:
    pool.job("x", lambda job: None)
    job = pool.enqueuer.enqueue_unique("x", {"a": 1})
    assert job is not None
    run_until_drained(pool)
    assert fake_redis.exists(job.unique_key) == 0
    assert pool.enqueuer.enqueue_unique("x", {"a": 1}) is not None


def test_a_unique_by_key_job_runs_with_the_newest_args(pool: WorkerPool, fake_redis: fakeredis.FakeRedis) -> None:
    seen: list[int] = []
    pool.job("x", lambda job: seen.append(job.arg_int("v")))
    first = pool.enqueuer.enqueue_unique_by_key("x", {"v": 1}, key={"user": 7})
    assert first is not None
    assert pool.enqueuer.enqueue_unique_by_key("x", {"v": 2}, key={"user": 7}) is None
    run_until_drained(pool)
    assert seen == [2]
    assert fake_redis.exists(first.unique_key) == 0


def test_a_unique_key_outside_the_jobs_lock_space_is_never_deleted(
    pool: WorkerPool, fake_redis: fakeredis.FakeRedis, keys: Keys, namespace: str
) -> None:
    seen: list[str] = []
    pool.job("x", lambda job: seen.append(job.id))
    fake_redis.set(f"{namespace}:precious", "keep")
    forged = Job(name="x", id="forged", enqueued_at=1, unique=True, unique_key=f"{namespace}:precious")
    fake_redis.lpush(keys.queue("x"), forged.to_json())
    run_until_drained(pool)
    assert seen == ["forged"]
    assert fake_redis.get(f"{namespace}:precious") == b"keep"


def test_a_handler_raising_an_infinite_retry_does_not_strand_the_job(
    pool: WorkerPool, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    def forever(job: Job) -> None:
        raise Retry(in_seconds=float("inf"))

    pool.job("x", forever).enqueue()
    run_until_drained(pool)
    assert_nothing_in_flight(fake_redis, keys, pool, "x")


def test_an_interrupted_unique_by_key_job_keeps_its_newest_args(
    pool: WorkerPool, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    def interrupted(job: Job) -> None:
        raise KeyboardInterrupt

    pool.job("x", interrupted)
    first = pool.enqueuer.enqueue_unique_by_key("x", {"v": 1}, key={"user": 7})
    assert first is not None
    pool.enqueuer.enqueue_unique_by_key("x", {"v": 2}, key={"user": 7})
    pool.start()
    assert pool.wait_for_stop_request(timeout=5)
    pool.stop()
    lock = fake_redis.get(first.unique_key)
    [queued] = fake_redis.lrange(keys.queue("x"), 0, -1)
    will_run = Job.from_json(cast(bytes, lock) if lock not in (None, b"1") else queued)
    assert will_run.args == {"v": 2}


def test_a_checkin_of_a_run_that_ended_is_ignored_and_said_so(
    pool: WorkerPool, fake_redis: fakeredis.FakeRedis, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    """A job object kept past its run (here by the next run) checks in: nothing of the current run changes."""
    kept: list[Job] = []

    def handler(job: Job) -> None:
        if kept:
            kept[0].checkin("from a run that ended")
        kept.append(job)

    task = pool.job("step", handler, timeout=30)
    first, second = task.enqueue(n=1), task.enqueue(n=2)
    run_until_drained(pool)
    assert [job.id for job in kept] == [first.id, second.id]
    assert fake_redis.zcard(keys.retry) == fake_redis.zcard(keys.dead) == 0
    assert f"job step {first.id} checked in after its run ended: ignored" in caplog.text
