"""A pool's lifecycle on a real Redis: stop() finishes in-flight jobs, drain(), `with pool:`, unreachable Redis."""

from __future__ import annotations

import threading

import pytest

import workq
from integration.job_log import JobLog
from integration.namespace_view import NamespaceView
from integration.pool_factory import PoolFactory, workq_threads
from workq import Enqueuer, Job, WorkerPool


def test_stop_waits_for_the_job_in_flight_and_fetches_nothing_more(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, release: threading.Event
) -> None:
    started = threading.Event()
    log = JobLog()
    pool = make_pool(concurrency=1)

    @pool.job("slow")
    def slow(job: Job) -> None:
        log.record(job)
        started.set()
        release.wait(10)

    blocker = enqueuer.enqueue("slow")
    pool.start()
    assert started.wait(10)
    waiting = enqueuer.enqueue_many("slow", [{"i": i} for i in range(3)])

    stopper = threading.Thread(target=pool.stop)
    stopper.start()
    stopper.join(0.2)
    assert stopper.is_alive(), "stop() returned while a job was still running"
    assert pool.stopping

    release.set()
    stopper.join(10)
    assert not stopper.is_alive()

    assert [job.id for job in log.jobs] == [blocker.id]
    assert view.in_progress("slow", pool.pool_id) == []
    assert view.lock("slow") == 0 and view.lock_info("slow") == {}
    assert len(view.queued("slow")) == len(waiting)


def test_drain_returns_once_every_queued_job_has_run(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    pool = make_pool(concurrency=4)
    pool.job("count", log.record)
    enqueuer.enqueue_many("count", [{"i": i} for i in range(100)])
    later = enqueuer.enqueue_in("count", 3600)

    pool.start()
    pool.drain(timeout=10)

    assert len(log) == 100, "drain() returned while jobs were queued or in flight"
    assert view.idle_problems("count", pool.pool_id) == []
    assert [member.fields["id"] for member in view.scheduled()] == [later.id], "drain does not wait for scheduled"


def test_drain_with_a_timeout_raises_while_a_job_runs(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, release: threading.Event
) -> None:
    started = threading.Event()
    pool = make_pool(concurrency=2)

    @pool.job("slow")
    def slow(job: Job) -> None:
        started.set()
        release.wait(10)

    enqueuer.enqueue("slow")
    pool.start()
    assert started.wait(10)

    with pytest.raises(TimeoutError):
        pool.drain(timeout=0.2)

    release.set()
    pool.drain(timeout=10)
    assert view.idle_problems("slow", pool.pool_id) == []


def test_drain_needs_a_started_pool(make_pool: PoolFactory) -> None:
    pool = make_pool()
    pool.job("idle", lambda job: None)

    with pytest.raises(workq.WorkqError, match="started"):
        pool.drain(timeout=1)


def test_with_pool_starts_it_and_stops_it_even_on_error(make_pool: PoolFactory, enqueuer: Enqueuer) -> None:
    log = JobLog()
    pool = make_pool(concurrency=2)
    pool.job("ctx", log.record)
    threads_before = workq_threads()

    with pytest.raises(RuntimeError, match="body failed"), pool as running:
        assert running is pool
        assert len(workq_threads() - threads_before) >= 2
        enqueued = enqueuer.enqueue("ctx")
        assert [job.id for job in log.wait_for(1)] == [enqueued.id]
        raise RuntimeError("body failed")

    assert workq_threads() - threads_before == set(), "threads still running after the with block"
    pool.stop()  # a no-op on a stopped pool


def test_start_twice_is_refused(make_pool: PoolFactory) -> None:
    pool = make_pool()
    pool.job("idle", lambda job: None)
    pool.start()

    with pytest.raises(workq.WorkqError, match="running pool"):
        pool.start()


def test_start_without_jobs_is_refused(make_pool: PoolFactory) -> None:
    with pytest.raises(workq.WorkqError, match="no jobs registered"):
        make_pool().start()


def test_start_with_unreachable_redis_raises_connection_failed(namespace: str) -> None:
    threads_before = workq_threads()
    pool = WorkerPool(namespace, "redis://127.0.0.1:1/0", concurrency=2)
    pool.job("ping", lambda job: None)

    with pytest.raises(workq.ConnectionFailed, match=r"127\.0\.0\.1:1\b"):
        pool.start()

    assert workq_threads() - threads_before == set(), "a pool that failed to start left threads running"
    pool.stop()
