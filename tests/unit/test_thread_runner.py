"""The thread runner on fakeredis: one fetch serves several idle worker threads (one job when one waits), and jobs
handed to threads that have not started them go straight back to their queue, in queue order, when the pool stops."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import fakeredis
import pytest

from support import wait_until
from workq.dispatcher import Dispatcher
from workq.job import Job
from workq.keys import Keys
from workq.priority_sampler import PrioritySampler
from workq.registration import Registration
from workq.run import Ack, Run
from workq.worker_pool import WorkerPool

NOW = 1_700_000_000.0


def noop(job: Job) -> None:
    """Do nothing."""


def test_jobs_handed_to_threads_that_never_started_them_go_back_in_queue_order(
    fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    pool = WorkerPool(namespace, fake_redis, concurrency=3, clock=lambda: NOW)
    pool.job("work", noop)
    keys = Keys(namespace)
    pool.enqueuer.enqueue_many("work", [{"n": n} for n in range(5)])
    queued = fake_redis.lrange(keys.queue("work"), 0, -1)
    stopping = threading.Event()
    runner = pool._build_running(3, stopping)._thread_runner
    assert runner is not None
    runner.dispatch.start()  # the dispatch threads only: no worker thread ever takes the jobs they are handed
    try:
        wait_until(lambda: sum(runner.dispatch.held_payloads().values()) == 3, what="a job handed to each thread")
        assert fake_redis.llen(keys.in_progress("work", pool.pool_id)) == 3
    finally:
        stopping.set()
        runner.stop_fetching()
        runner.close(timeout=5)
    assert fake_redis.lrange(keys.queue("work"), 0, -1) == queued
    assert fake_redis.llen(keys.in_progress("work", pool.pool_id)) == 0
    assert fake_redis.get(keys.lock("work")) == b"0"
    assert pool._in_flight.count == 0


@pytest.fixture
def fetches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(jobs asked for, jobs fetched) of every fetch the pool's dispatchers make."""
    seen: list[tuple[int, int]] = []
    exchange = Dispatcher.exchange

    def counted(
        dispatcher: Dispatcher, acks: Sequence[tuple[Run, Ack]], order: PrioritySampler[Registration], count: int
    ) -> list[Run]:
        runs = exchange(dispatcher, acks, order, count)
        if count:
            seen.append((count, len(runs)))
        return runs

    monkeypatch.setattr(Dispatcher, "exchange", counted)
    return seen


def test_an_idle_pool_asks_for_one_job_at_a_time(
    fake_redis: fakeredis.FakeRedis, namespace: str, fetches: list[tuple[int, int]]
) -> None:
    pool = WorkerPool(namespace, fake_redis, concurrency=10, clock=lambda: NOW)
    ran = threading.Event()
    pool.job("work", lambda job: ran.set())
    with pool:
        wait_until(lambda: fetches, what="the idle pool's first look")
        pool.enqueuer.enqueue("work")
        assert ran.wait(10)
    asked_when_found = [asked for asked, got in fetches if got]
    assert asked_when_found[0] == 1


def test_a_busy_pool_fetches_for_several_threads_in_one_call(
    fake_redis: fakeredis.FakeRedis, namespace: str, fetches: list[tuple[int, int]]
) -> None:
    pool = WorkerPool(namespace, fake_redis, concurrency=10, clock=lambda: NOW)
    pool.job("work", noop)
    jobs = pool.enqueuer.enqueue_many("work", [{"n": n} for n in range(200)])
    with pool:
        pool.drain(timeout=30)
    assert sum(got for _, got in fetches) == len(jobs)
    assert max(got for _, got in fetches) > 1
    assert all(got <= asked <= 10 for asked, got in fetches)
