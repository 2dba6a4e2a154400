"""Unique jobs on a real Redis: the lock key and job JSON of wire-format.md, duplicates refused while pending,
the lock released when a worker starts the job, by-key replacement of the args."""

from __future__ import annotations

import threading

import pytest

from integration.job_log import JobLog
from integration.namespace_view import NamespaceView
from integration.pool_factory import PoolFactory
from workq import Enqueuer, Job


def test_unique_job_json_and_lock_key_match_the_wire_format(enqueuer: Enqueuer, view: NamespaceView) -> None:
    with_args = enqueuer.enqueue_unique("dedupe", {"b": "<x>", "a": 1})
    without_args = enqueuer.enqueue_unique("dedupe")
    assert with_args is not None and without_args is not None

    lock_key = view.key('unique:dedupe:{"a":1,"b":"\\u003cx\\u003e"}\n')
    bare_lock_key = view.key("unique:dedupe:")
    assert with_args.unique_key == lock_key and without_args.unique_key == bare_lock_key
    assert view.client.get(lock_key) == with_args.to_json().encode(), "a lock holds its owner: the job itself"
    assert view.client.get(bare_lock_key) == without_args.to_json().encode()
    assert 0 < view.client.ttl(lock_key) <= 86400
    oldest = view.queued("dedupe")[-1].decode("utf-8")
    assert oldest == (
        f'{{"name":"dedupe","id":"{with_args.id}","t":{with_args.enqueued_at},"args":{{"a":1,"b":"\\u003cx\\u003e"}},'
        f'"unique":true,"unique_key":"{view.namespace}:unique:dedupe:{{\\"a\\":1,\\"b\\":\\"\\\\u003cx\\\\u003e\\"}}\\n"}}'
    )


def test_a_duplicate_is_refused_while_pending_and_accepted_once_started(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, release: threading.Event
) -> None:
    started = threading.Event()
    log = JobLog()
    pool = make_pool(concurrency=1)

    @pool.job("dedupe")
    def dedupe(job: Job) -> None:
        log.record(job)
        started.set()
        release.wait(10)

    first = enqueuer.enqueue_unique("dedupe", {"user": 7})
    assert first is not None
    assert enqueuer.enqueue_unique("dedupe", {"user": 7}) is None
    assert enqueuer.enqueue_unique_in("dedupe", 60, {"user": 7}) is None
    assert enqueuer.enqueue_unique("dedupe", {"user": 8}) is not None
    assert len(view.queued("dedupe")) == 2

    pool.start()
    assert started.wait(10)
    assert not view.client.exists(first.unique_key), "the lock is released when a worker starts the job"
    again = enqueuer.enqueue_unique("dedupe", {"user": 7})
    assert again is not None, "a running job blocks nothing"
    release.set()
    pool.drain(timeout=10)

    assert [job.args for job in log.jobs] == [{"user": 7}, {"user": 8}, {"user": 7}]
    assert [job.id for job in log.jobs][::2] == [first.id, again.id]


def test_a_delayed_unique_lock_outlives_the_delay(enqueuer: Enqueuer, view: NamespaceView) -> None:
    scheduled = enqueuer.enqueue_unique_in("dedupe", 3600, {"user": 7})
    assert scheduled is not None

    assert view.client.ttl(scheduled.unique_key) > 3600 + 86400 - 60
    assert [member.score for member in view.scheduled()] == [scheduled.run_at]


def test_unique_by_key_runs_once_with_the_newest_args(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    pool = make_pool(concurrency=1)
    pool.job("sync_user", log.record)

    first = enqueuer.enqueue_unique_by_key("sync_user", {"version": 1}, key={"user": 7})
    assert first is not None
    assert enqueuer.enqueue_unique_by_key("sync_user", {"version": 2}, key={"user": 7}) is None
    assert enqueuer.enqueue_unique_by_key("sync_user", {"version": 3}, key={"user": 7}) is None
    assert len(view.queued("sync_user")) == 1

    pool.start()
    pool.drain(timeout=10)

    assert [job.args for job in log.jobs] == [{"version": 3}]
    assert not view.client.exists(first.unique_key)
    assert view.idle_problems("sync_user", pool.pool_id) == []


@pytest.mark.parametrize("by_key", [False, True], ids=["unique", "unique_by_key"])
def test_a_unique_job_put_back_by_system_exit_stays_unique(
    by_key: bool, make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    def enqueue(version: int) -> Job | None:
        if by_key:
            return enqueuer.enqueue_unique_by_key("sync_user", {"version": version}, key={"user": 7})
        return enqueuer.enqueue_unique("sync_user", {"version": 1})

    quitting = make_pool(concurrency=1)

    @quitting.job("sync_user")
    def quit_now(job: Job) -> None:
        raise SystemExit()

    assert enqueue(1) is not None
    enqueue(2)
    quitting.start()
    assert quitting.wait_for_stop_request(10)
    quitting.stop()
    assert len(view.queued("sync_user")) == 1, "SystemExit puts the job back in its queue"

    assert enqueue(3) is None, "the job is pending again, so a duplicate must be refused"
    log = JobLog()
    runner = make_pool(concurrency=1)
    runner.job("sync_user", log.record)
    runner.start()
    runner.drain(timeout=10)
    assert [job.args for job in log.jobs] == [{"version": 3 if by_key else 1}]
