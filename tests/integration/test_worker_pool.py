"""Running jobs on real worker threads: exactly once, across pools, through middlewares, by priority and under
concurrency caps."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import redis

from integration.job_log import JobLog
from integration.namespace_view import NamespaceView
from integration.pool_factory import PoolFactory
from support import wait_until
from workq import Enqueuer, Job, WorkerPool, WorkqError, dispatch_loop


def test_500_jobs_on_8_threads_each_run_exactly_once(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    pool = make_pool(concurrency=8)
    pool.job("work", log.record)
    enqueued = enqueuer.enqueue_many("work", [{"i": i} for i in range(500)])

    pool.start()
    pool.drain(timeout=10)

    assert log.runs_per_id() == Counter({job.id: 1 for job in enqueued})
    assert view.idle_problems("work", pool.pool_id) == []
    assert (view.retry(), view.dead(), view.scheduled()) == ([], [], [])


def test_two_pools_on_one_namespace_share_jobs_and_run_each_once(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    ran_by: Counter[str] = Counter()
    ran_by_lock = threading.Lock()
    pools = [make_pool(concurrency=4), make_pool(concurrency=4)]

    def handler_for(label: str) -> Callable[[Job], None]:
        def handle(job: Job) -> None:
            log.record(job)
            with ran_by_lock:
                ran_by[label] += 1

        return handle

    for label, pool in zip("ab", pools, strict=True):
        pool.job("work", handler_for(label))
    for pool in pools:
        pool.start()
    enqueued = enqueuer.enqueue_many("work", [{"i": i} for i in range(500)])

    log.wait_for(500)
    for pool in pools:
        pool.drain(timeout=10)

    assert log.runs_per_id() == Counter({job.id: 1 for job in enqueued})
    assert ran_by["a"] > 0 and ran_by["b"] > 0, f"both pools should have fetched jobs: {ran_by}"
    assert view.idle_problems("work", *(pool.pool_id for pool in pools)) == []


def test_middlewares_wrap_the_handler_in_registration_order(make_pool: PoolFactory, enqueuer: Enqueuer) -> None:
    calls: list[str] = []
    pool = make_pool()

    @pool.middleware
    def first(job: Job, next: Callable[[], None]) -> None:
        calls.append(f"m1-before {job.arg_str('tag')}")
        next()
        calls.append("m1-after")

    @pool.middleware
    def second(job: Job, next: Callable[[], None]) -> None:
        calls.append("m2-before")
        next()
        calls.append("m2-after")

    @pool.job("wrapped")
    def wrapped(job: Job) -> None:
        calls.append("handler")

    enqueuer.enqueue("wrapped", {"tag": "x"})
    pool.start()
    pool.drain(timeout=10)

    assert calls == ["m1-before x", "m2-before", "handler", "m2-after", "m1-after"]


def test_a_middleware_not_calling_next_skips_the_handler_and_acks_the_job(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    seen_by_middleware = JobLog()
    pool = make_pool()

    @pool.middleware
    def gate(job: Job, next: Callable[[], None]) -> None:
        seen_by_middleware.record(job)

    pool.job("gated", log.record)
    enqueued = enqueuer.enqueue("gated", {"n": 1})
    pool.start()
    pool.drain(timeout=10)

    assert [job.id for job in seen_by_middleware.jobs] == [enqueued.id]
    assert len(log) == 0
    assert view.idle_problems("gated", pool.pool_id) == []
    assert (view.retry(), view.dead(), view.scheduled()) == ([], [], [])


def test_a_middleware_that_raises_fails_the_job(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    pool = make_pool()

    @pool.middleware
    def refuse(job: Job, next: Callable[[], None]) -> None:
        raise PermissionError("not today")

    pool.job("refused", log.record)
    enqueued = enqueuer.enqueue("refused")
    pool.start()
    pool.drain(timeout=10)

    assert len(log) == 0
    (retry,) = view.retry()
    assert (retry.fields["id"], retry.fields["fails"]) == (enqueued.id, 1)
    assert "not today" in retry.fields["err"]
    assert view.idle_problems("refused", pool.pool_id) == []


def test_higher_priority_is_fetched_more_often_and_lower_is_not_starved(
    make_pool: PoolFactory, enqueuer: Enqueuer
) -> None:
    log = JobLog()
    pool = make_pool(concurrency=1, rng=random.Random(20240601))

    def record_200(job: Job) -> None:
        log.record(job)
        if len(log) >= 200:
            pool.request_stop()

    pool.job("low", record_200, priority=1)
    pool.job("high", record_200, priority=9)
    enqueuer.enqueue_many("low", [None] * 1000)
    enqueuer.enqueue_many("high", [None] * 1000)

    pool.start()
    assert pool.wait_for_stop_request(10)
    pool.stop()

    names = Counter(job.name for job in log.jobs[:200])
    assert names["high"] > 140, names
    assert names["low"] >= 1, names


def test_max_concurrency_caps_jobs_of_a_name_running_at_once(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    lock = threading.Lock()
    running = 0
    peak = 0
    log = JobLog()
    pool = make_pool(concurrency=8)

    @pool.job("capped", max_concurrency=2)
    def capped(job: Job) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            time.sleep(0.02)  # simulated work, so that jobs would overlap without the cap
        finally:
            with lock:
                running -= 1
        log.record(job)

    enqueuer.enqueue_many("capped", [None] * 40)
    pool.start()
    pool.drain(timeout=10)

    assert len(log) == 40
    assert peak == 2, f"at most 2 at once, and 8 threads should reach the cap; peak was {peak}"
    assert view.client.get(view.key("jobs:capped:max_concurrency")) == b"2"
    assert view.idle_problems("capped", pool.pool_id) == []


def test_a_paused_job_name_is_not_fetched_until_unpaused(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    pool = make_pool(concurrency=1)
    pool.job("paused", log.record)
    pool.job("running", log.record)
    view.client.set(view.key("jobs:paused:paused"), "1")
    held = enqueuer.enqueue("paused")
    enqueuer.enqueue_many("running", [None] * 10)

    pool.start()
    log.wait_for(10)

    assert {job.name for job in log.jobs} == {"running"}
    assert len(view.queued("paused")) == 1

    view.client.delete(view.key("jobs:paused:paused"))
    assert log.wait_for(11)[-1].id == held.id


def test_each_ack_rides_with_the_next_fetch(
    make_pool: PoolFactory, enqueuer: Enqueuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One round trip per job from a full queue with one thread (the ack of a run rides with the fetch of the next
    job), not two; the worker thread itself sends nothing."""
    writes: Counter[str] = Counter()
    send = redis.connection.AbstractConnection.send_packed_command

    def counted(self: Any, command: Any, check_health: bool = True) -> None:
        writes[threading.current_thread().name] += 1
        send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    log = JobLog()
    pool = make_pool(concurrency=1)
    pool.job("work", log.record)
    jobs = 200
    enqueuer.enqueue_many("work", [{"i": i} for i in range(jobs)])

    pool.start()
    pool.drain(timeout=20)
    pool.stop()

    assert len(log.runs_per_id()) == jobs
    by_dispatch = sum(count for name, count in writes.items() if name.startswith("workq-thread-dispatcher"))
    assert jobs <= by_dispatch < 1.25 * jobs, writes  # besides: the first fetch, idle looks
    assert not any(name.startswith("workq-worker") for name in writes), writes


def test_a_pool_with_more_threads_than_redis_pys_default_pool_size_runs(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    """redis-py 8 caps a client built from a URL at 100 connections, and each waiting worker holds one: a pool of
    150 threads failed with "Too many connections". A pool built from a URL now sizes its connection pool."""
    log = JobLog()
    pool = make_pool(concurrency=150)
    pool.job("work", log.record)
    pool.start()
    jobs = enqueuer.enqueue_many("work", [{"n": n} for n in range(300)])

    log.wait_for(300, timeout=30)
    pool.drain(timeout=10)
    assert sorted(job.id for job in log.jobs) == sorted(job.id for job in jobs)


def test_a_given_client_too_small_for_the_pool_is_refused_at_start(namespace: str, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, max_connections=20)
    pool = WorkerPool(namespace, client, concurrency=30)
    pool.job("work", lambda job: None)

    with pytest.raises(WorkqError, match="may open 20 connections, but this pool needs up to 62"):
        pool.start()


def test_an_idle_pool_is_woken_by_each_enqueue_not_by_its_poll(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Job after job into an idle pool, each enqueued once the last one ran: every one is started by its enqueue's
    wake-up (the idle poll is an hour away), whether the pool marked itself waiting again after its wake-up or
    kept the mark it had (its acknowledgement's empty fetch)."""
    monkeypatch.setattr(dispatch_loop, "IDLE_POLL", 3600.0)
    ran: list[threading.Event] = [threading.Event() for _ in range(4)]
    pool = make_pool(concurrency=2)

    @pool.job("prompt")
    def prompt(job: Job) -> None:
        ran[job.arg_int("n")].set()

    pool.start()
    for n, done in enumerate(ran):
        wait_until(lambda: view.client.exists(view.key("jobs:prompt:waiting")), what="the pool idle, waiting")
        enqueuer.enqueue("prompt", {"n": n})
        assert done.wait(10), f"job {n}: the idle pool was not woken by its enqueue"
