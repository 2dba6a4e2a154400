"""Cancelling a running job on real Redis, through the contract `Client.cancel` follows (SET `cancel:<id>` with an
expiry, PUBLISH the id on the cancel channel): the pool running it interrupts the run with `Cancelled` promptly and
files the job dead, "cancelled", without a retry; the poll of cancel requests catches a missed message."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import redis

from integration.interruptible import Interruptible
from integration.namespace_view import NamespaceView
from integration.pool_factory import PoolFactory
from support import wait_until
from workq import Client, Enqueuer, Job, JobFailed, WorkerPool
from workq.keys import Keys

CANCEL_DEADLINE = 5.0
"""Generous, for a shared machine: pub/sub delivers in milliseconds, the fallback poll within about a second."""


def start_running(make_pool: PoolFactory, enqueuer: Enqueuer, handler: Interruptible, **options: object) -> Job:
    pool: WorkerPool = make_pool()
    pool.job("long", handler, max_fails=5, **options)  # type: ignore[arg-type]
    pool.start()
    job = enqueuer.enqueue("long", {})
    assert handler.started.wait(10), "the job did not start"
    return job


def request_cancel(client: redis.Redis, keys: Keys, job_id: str, *, publish: bool) -> float:
    """What `Client.cancel` does for a running job; returns when (monotonic) it was requested."""
    requested_at = time.monotonic()
    client.set(keys.cancel_request(job_id), 1, ex=86400)
    if publish:
        client.publish(keys.cancel_channel, job_id)
    return requested_at


def test_a_cancel_interrupts_the_run_promptly_and_files_it_dead_without_retry(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, redis_client: redis.Redis, namespace: str
) -> None:
    handler, keys = Interruptible(), Keys(namespace)
    job = start_running(make_pool, enqueuer, handler)
    requested_at = request_cancel(redis_client, keys, job.id, publish=True)

    assert handler.ended.wait(CANCEL_DEADLINE), "the run was not interrupted"
    latency = handler.ended_at - requested_at
    [dead] = wait_until(view.dead, timeout=5, what="the cancelled job in the dead set")
    print(f"cancel latency (request → handler interrupted), pub/sub: {latency * 1000:.1f} ms")
    assert (handler.raised, handler.saw_cancelled) == ("Cancelled", True)
    assert dead.fields["id"] == job.id and dead.fields["err"].startswith("cancelled")
    assert dead.fields.get("fails", 0) == 0, "a cancel is not a failure"
    assert view.retry() == [] and view.queued("long") == []
    assert redis_client.exists(keys.cancel_request(job.id)) == 0, "the request is done with"


def test_a_cancel_whose_message_was_missed_is_found_by_the_poll(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, redis_client: redis.Redis, namespace: str
) -> None:
    handler, keys = Interruptible(), Keys(namespace)
    job = start_running(make_pool, enqueuer, handler)
    requested_at = request_cancel(redis_client, keys, job.id, publish=False)  # as if the message was lost

    assert handler.ended.wait(CANCEL_DEADLINE), "the poll did not find the cancel request"
    print(f"cancel latency (request → handler interrupted), poll: {(handler.ended_at - requested_at) * 1000:.0f} ms")
    [dead] = wait_until(view.dead, timeout=5, what="the cancelled job in the dead set")
    assert handler.raised == "Cancelled" and dead.fields["err"].startswith("cancelled")
    assert redis_client.exists(keys.cancel_request(job.id)) == 0


def test_a_cancel_during_a_timed_out_run_files_it_cancelled_not_retried(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, redis_client: redis.Redis, release: threading.Event
) -> None:
    """A handler that ignores its time-out is still running when the cancel comes: the cancel wins (dead)."""
    keys, timed_out = Keys(view.namespace), threading.Event()

    def ignores_time_out(job: Job) -> None:
        while not release.is_set():  # until the test ends
            try:
                time.sleep(0.01)
            except Exception:
                timed_out.set()  # and carries on

    pool = make_pool()
    pool.job("stubborn", ignores_time_out, timeout=0.5, max_fails=5)
    pool.start()
    job = enqueuer.enqueue("stubborn", {})
    assert timed_out.wait(10)
    request_cancel(redis_client, keys, job.id, publish=True)
    [dead] = wait_until(view.dead, timeout=15, what="the abandoned run filed as cancelled")
    assert dead.fields["err"].startswith("cancelled") and view.retry() == []


def test_a_cancel_for_a_job_that_is_not_running_here_changes_nothing(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, redis_client: redis.Redis, namespace: str
) -> None:
    handler, keys = Interruptible(), Keys(namespace)
    job = start_running(make_pool, enqueuer, handler)
    request_cancel(redis_client, keys, "not-" + job.id, publish=True)
    redis_client.publish(keys.cancel_channel, b"\xff garbage")
    assert not handler.ended.wait(2.5), "another job's cancel interrupted this run"
    request_cancel(redis_client, keys, job.id, publish=True)
    assert handler.ended.wait(CANCEL_DEADLINE)


def test_a_cancel_reaches_an_async_run_too(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, redis_client: redis.Redis, namespace: str
) -> None:
    started, saw_cancelled = threading.Event(), []

    async def waits(job: Job) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        finally:
            saw_cancelled.append(job.cancelled)

    pool = make_pool()
    pool.job("async_long", waits)
    pool.start()
    job = enqueuer.enqueue("async_long", {})
    assert started.wait(10)
    request_cancel(redis_client, Keys(namespace), job.id, publish=True)
    [dead] = wait_until(view.dead, timeout=CANCEL_DEADLINE, what="the cancelled async job in the dead set")
    assert dead.fields["err"].startswith("cancelled") and saw_cancelled == [True]
    assert redis_client.exists(Keys(namespace).cancel_request(job.id)) == 0


def test_client_cancel_and_wait_result_work_end_to_end_with_the_pool(
    make_pool: PoolFactory, enqueuer: Enqueuer, redis_client: redis.Redis, namespace: str
) -> None:
    """The Client side of the contract against this worker side: cancel of a running job, a kept result, a
    timed-out job's status."""
    handler = Interruptible()
    pool = make_pool(concurrency=3)
    pool.job("long", handler)
    pool.job("answer", lambda job: {"answer": 42}, keep_result=60)
    pool.job("late", lambda job: time.sleep(0.5) or time.sleep(30), timeout=0.2, max_fails=1)
    pool.start()
    client = Client(namespace, redis_client)
    running, answer, late = (enqueuer.enqueue(name, {}) for name in ("long", "answer", "late"))
    assert client.wait_result(answer.id, timeout=10) == {"answer": 42}
    status = client.job_status(answer.id)
    assert status is not None and (status.state, status.result) == ("done", {"answer": 42})

    assert handler.started.wait(10)
    assert client.cancel(running.id) == "running"
    assert handler.ended.wait(CANCEL_DEADLINE) and handler.raised == "Cancelled"
    with pytest.raises(JobFailed, match="cancelled"):
        client.wait_result(running.id, timeout=10)
    cancelled = client.job_status(running.id)
    assert cancelled is not None and cancelled.state == "cancelled"

    with pytest.raises(JobFailed, match="timed out"):
        client.wait_result(late.id, timeout=20)
