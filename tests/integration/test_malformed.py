"""Bytes that are not a job, found in a queue or in the retry/scheduled sets: buried in the dead set with the reason
and the bytes, while the pool keeps running real jobs."""

from __future__ import annotations

import logging

import pytest

from integration.job_log import JobLog
from integration.namespace_view import NamespaceView
from integration.pool_factory import PoolFactory
from support import wait_until
from workq import Enqueuer

MALFORMED = {
    "{not json": "not valid JSON",
    "[]": "JSON object",
    '{"id":"x"}': "no name",
    '{"name":"x","args":[1]}': "args must be a JSON object",
}
"""Raw payload → what its dead record's `err` must say."""


def test_malformed_payloads_are_dead_with_reason_and_bytes_and_the_worker_goes_on(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    pool = make_pool(concurrency=1)
    pool.job("echo", log.record)
    for payload in MALFORMED:
        view.client.lpush(view.key("jobs:echo"), payload)
    valid = enqueuer.enqueue("echo", {"ok": True})

    pool.start()
    (job,) = log.wait_for(1)
    pool.drain(timeout=10)

    assert job.id == valid.id
    dead = {member.fields["payload"]: member for member in view.dead()}
    assert set(dead) == set(MALFORMED)
    for payload, reason in MALFORMED.items():
        fields = dead[payload].fields
        assert reason in fields["err"], fields
        assert fields["name"] == "echo"
        assert fields["failed_at"] == dead[payload].score
    assert view.idle_problems("echo", pool.pool_id) == []


NON_FINITE = [
    '{"name":"echo","id":"p1","t":1e999,"args":null}',
    '{"name":"echo","id":"p2","t":NaN,"args":null}',
    '{"name":"echo","id":"p3","t":1,"args":null,"fails":Infinity}',
]


@pytest.mark.parametrize("payload", NON_FINITE, ids=["t_1e999", "t_NaN", "fails_Infinity"])
def test_non_finite_numbers_in_a_queued_job_make_it_dead_not_stuck(
    payload: str, make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    pool = make_pool(concurrency=1)
    pool.job("echo", log.record)
    view.client.lpush(view.key("jobs:echo"), payload)
    enqueuer.enqueue("echo")

    pool.start()
    log.wait_for(1)
    pool.drain(timeout=10)

    assert view.idle_problems("echo", pool.pool_id) == []
    assert [member.fields["payload"] for member in view.dead()] == [payload]


@pytest.mark.parametrize(
    "poison",
    [
        ("scheduled", '{"name":"echo","id":"p1","t":1e999,"args":null}'),
        ("retry", '{"name":"echo","id":"p2","t":1,"args":null,"note":NaN}'),
    ],
    ids=["scheduled_t_1e999", "retry_extra_NaN"],
)
def test_a_poisoned_sorted_set_member_does_not_block_requeuing(
    poison: tuple[str, str],
    make_pool: PoolFactory,
    enqueuer: Enqueuer,
    view: NamespaceView,
    caplog: pytest.LogCaptureFixture,
) -> None:
    zset, payload = poison
    log = JobLog()
    pool = make_pool(concurrency=1)
    pool.job("echo", log.record)
    view.client.zadd(view.key(zset), {payload: 0})
    due = enqueuer.enqueue_in("echo", 0)

    def requeue_pass_crashed() -> bool:
        """A requeue pass ended in an unhandled exception (logged with its traceback by the loop)."""
        return any(record.threadName == "workq-requeuer" and record.exc_info for record in caplog.records)

    with caplog.at_level(logging.ERROR, logger="workq"):
        pool.start()
        wait_until(lambda: len(log) or requeue_pass_crashed(), what="the due job to run or the requeuer to fail")

    assert not requeue_pass_crashed()
    assert [job.id for job in log.wait_for(1)] == [due.id]
    assert [member.fields["payload"] for member in view.dead()] == [payload]
