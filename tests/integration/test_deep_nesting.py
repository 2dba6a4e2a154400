"""Job JSON nested deeper than args may (gojson.MAX_DEPTH levels): refused at enqueue, and when another writer put it
in a queue or sorted set, filed in the dead set once with the reason while the pool goes on."""

from __future__ import annotations

import pytest

from integration.job_log import JobLog
from integration.namespace_view import NamespaceView
from integration.pool_factory import PoolFactory
from support import wait_until
from workq import Client, Enqueuer, gojson

LEVELS = 600
DEEP_PAYLOAD = '{"name":"echo","id":"deep","t":1,"args":{"a":' + "[" * (LEVELS - 1) + "]" * (LEVELS - 1) + "}}"
REASON = f"args may nest at most {gojson.MAX_DEPTH} levels"


def _nested_args(levels: int) -> dict[str, object]:
    args: dict[str, object] = {}
    for _ in range(levels - 1):
        args = {"a": args}
    return args


def test_a_deeply_nested_job_in_a_queue_is_dead_once_and_the_pool_goes_on(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    pool = make_pool(concurrency=1)
    pool.job("echo", log.record)
    view.client.lpush(view.key("jobs:echo"), DEEP_PAYLOAD)
    before = enqueuer.enqueue("echo", {"n": 1})

    pool.start()
    log.wait_for(1)
    after = enqueuer.enqueue("echo", {"n": 2})
    log.wait_for(2)
    pool.drain(timeout=10)

    assert [job.id for job in log.jobs] == [before.id, after.id]
    (dead,) = view.dead()
    assert dead.fields["payload"] == DEEP_PAYLOAD
    assert dead.fields["name"] == "echo"
    assert "nest too deep" in dead.fields["err"] and REASON in dead.fields["err"], dead.fields
    assert view.idle_problems("echo", pool.pool_id) == []


@pytest.mark.parametrize("zset", ["retry", "scheduled"])
def test_a_deeply_nested_due_job_is_dead_once_and_requeuing_goes_on(
    zset: str, make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    pool = make_pool(concurrency=1)
    pool.job("echo", log.record)
    view.client.zadd(view.key(zset), {DEEP_PAYLOAD: 0})
    due = enqueuer.enqueue_in("echo", 0)

    pool.start()
    assert [job.id for job in log.wait_for(1)] == [due.id]
    (dead,) = wait_until(view.dead, what="the deep job in the dead set")

    assert dead.fields["payload"] == DEEP_PAYLOAD
    assert REASON in dead.fields["err"], dead.fields
    assert view.client.zcard(view.key(zset)) == 0


def test_the_client_lists_a_deeply_nested_dead_member_and_retry_leaves_it_dead(
    namespace: str, view: NamespaceView
) -> None:
    view.client.zadd(view.key("dead"), {DEEP_PAYLOAD: 5})
    client = Client(namespace, view.client)

    (listed,), total = client.dead_jobs()
    assert total == 1 and listed.id.startswith("malformed-") and REASON in listed.last_err
    assert client.retry_dead_jobs() == 0
    assert [member.raw.decode() for member in view.dead()] == [DEEP_PAYLOAD]


@pytest.mark.parametrize("unique", [False, True])
def test_enqueue_refuses_args_nested_too_deep_and_queues_nothing(
    unique: bool, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    deep = _nested_args(gojson.MAX_DEPTH + 1)
    with pytest.raises(TypeError, match=REASON):
        if unique:
            enqueuer.enqueue_unique("echo", deep)
        else:
            enqueuer.enqueue("echo", deep)
    assert view.queued("echo") == []

    enqueuer.enqueue("echo", _nested_args(gojson.MAX_DEPTH))
    assert len(view.queued("echo")) == 1
