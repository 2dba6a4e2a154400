"""Every enqueue is sent once: after a stall longer than the socket time-out it raises `MaybeEnqueued` with exactly
one copy stored, never returns with two; a stale connection is replaced without doubt; a forked child never shares
its parent's connection (an Enqueuer's, or a worker thread's `dedicated_client`). Runs a redis-server of its own
(DEBUG SLEEP must be enabled to stall it)."""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from redis_servers import HOST, RedisProcess
from reliability.harness import report
from workq import ConnectionFailed, Enqueuer, Job, MaybeEnqueued
from workq.aio import AsyncEnqueuer
from workq.connection import dedicated_client

SOCKET_TIMEOUT = 0.25
STALL = 0.4
"""Longer than SOCKET_TIMEOUT: the reply times out although Redis runs the command when it wakes."""


def stall(server: RedisProcess, seconds: float = STALL) -> redis.Connection:
    """Send DEBUG SLEEP without waiting for its reply: Redis runs it before the enqueue that follows (it is idle and
    the command is written first), then answers everything queued behind it. Read the reply to know it is over."""
    connection = redis.Connection(host=HOST, port=server.port, socket_timeout=10)
    connection.connect()
    connection.send_command("DEBUG", "SLEEP", seconds)
    return connection


ENQUEUE_CALLS: dict[str, tuple[Any, ...]] = {
    "enqueue": ("x", {"n": 1}),
    "enqueue_in": ("x", 60, {"n": 1}),
    "enqueue_unique": ("x", {"n": 1}),
    "enqueue_unique_in": ("x", 60, {"n": 1}),
    "enqueue_unique_by_key": ("x", {"n": 1}, {"k": 1}),
    "enqueue_unique_in_by_key": ("x", 60, {"n": 1}, {"k": 1}),
    "enqueue_many": ("x", [{"n": 1}, {"n": 2}, {"n": 3}]),
}
"""Each enqueue method (of `Enqueuer` and `AsyncEnqueuer` alike) -> the arguments a test calls it with."""
WARM_UP_CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("enqueue_many", ("warm_up", [{}])),
    ("enqueue_unique", ("warm_up", {})),
    ("enqueue_in", ("warm_up", 60)),
]
"""Before a stall: connected, scripts loaded, and `x` not yet known, so the stall meets a first use."""


def call(enqueuer: Enqueuer | AsyncEnqueuer, method: str, args: tuple[Any, ...]) -> Any:
    """`enqueuer.method(*args)`: its result, or for an AsyncEnqueuer the coroutine to await."""
    return getattr(enqueuer, method)(*args)


def check_stored_once(admin: redis.Redis, namespace: str, error: MaybeEnqueued, elapsed: float, label: str) -> None:
    """After an enqueue met a stall: it raised `error` at once, and each job it names is stored exactly once."""
    copies = stored_ids(admin, namespace)
    report(label, raised="MaybeEnqueued", copies=len(copies), elapsed=elapsed)
    assert sorted(copies) == sorted(error.job_ids), "each job stored once, and the error names them"
    assert all(isinstance(job, Job) for job in error.jobs)
    assert isinstance(error, ConnectionFailed)
    assert elapsed < STALL + 0.5, "no resend waited for the server to wake"


CLIENTS: dict[str, Callable[[int], redis.Redis | str]] = {
    "redis.Redis with its default Retry": lambda port: redis.Redis(host=HOST, port=port, socket_timeout=SOCKET_TIMEOUT),
    "URL": lambda port: f"redis://{HOST}:{port}/0?socket_timeout={SOCKET_TIMEOUT}",
}


def stored_ids(client: redis.Redis, namespace: str) -> list[str]:
    """Ids of every job copy in the namespace's queue of `x` and its scheduled set, one entry per copy."""
    raw = client.lrange(f"{namespace}:jobs:x", 0, -1) + client.zrange(f"{namespace}:scheduled", 0, -1)
    return [json.loads(member)["id"] for member in raw]


@pytest.mark.parametrize("client_kind", list(CLIENTS))
@pytest.mark.parametrize("variant", list(ENQUEUE_CALLS))
def test_an_enqueue_whose_reply_timed_out_is_never_sent_twice(
    stallable_redis: RedisProcess, namespace: str, variant: str, client_kind: str
) -> None:
    admin = stallable_redis.client()
    enqueuer = Enqueuer(namespace, CLIENTS[client_kind](stallable_redis.port), clock=time.time)
    for method, args in WARM_UP_CALLS:
        call(enqueuer, method, args)
    admin.delete(f"{namespace}:scheduled")  # only the copies of the stalled enqueue are counted

    stalled = stall(stallable_redis)
    started = time.monotonic()
    with pytest.raises(MaybeEnqueued, match=r"may have been enqueued: Redis at .* reply was lost") as raised:
        call(enqueuer, variant, ENQUEUE_CALLS[variant])
    elapsed = time.monotonic() - started
    stalled.read_response()  # the stall is over: everything Redis received has run

    check_stored_once(admin, namespace, raised.value, elapsed, f"enqueue-once {variant} ({client_kind})")


def test_a_connection_redis_closed_is_replaced_before_the_enqueue_is_written(
    stallable_redis: RedisProcess, namespace: str
) -> None:
    """Nothing was written on the dead connection, so the enqueue goes out on a fresh one and returns; only a reply
    lost after the write is in doubt."""
    admin = stallable_redis.client()
    enqueuer = Enqueuer(namespace, redis.Redis(host=HOST, port=stallable_redis.port, socket_timeout=SOCKET_TIMEOUT))
    enqueuer.enqueue("x")
    assert admin.client_kill_filter(_type="normal", skipme=True) >= 1

    job = enqueuer.enqueue("x")
    stalled = stall(stallable_redis)
    with pytest.raises(MaybeEnqueued):
        enqueuer.enqueue("x")
    stalled.read_response()

    assert stored_ids(admin, namespace).count(job.id) == 1
    assert len(stored_ids(admin, namespace)) == 3


FORK_STALL = 1.0
"""Time for the child to start and write its enqueue while the parent's waits for its reply."""


Push = Callable[[str], str]
"""Stores one job tagged with who stored it; returns its id."""


def enqueuer_push(namespace: str, client: redis.Redis) -> Push:
    enqueuer = Enqueuer(namespace, client)
    return lambda tag: enqueuer.enqueue("x", {"from": tag}).id


def dedicated_client_push(namespace: str, client: redis.Redis) -> Push:
    """What a worker thread does on its `dedicated_client` (a redis-py client holding one connection)."""
    dedicated = dedicated_client(client)

    def push(tag: str) -> str:
        job = Job(name="x", args={"from": tag})
        dedicated.lpush(f"{namespace}:jobs:x", job.to_json())
        return job.id

    return push


def push_in_child(push: Push, results: Any) -> None:
    try:
        results.put(push("child"))
    except BaseException as exc:
        results.put(repr(exc))


@pytest.mark.parametrize("make_push", [enqueuer_push, dedicated_client_push], ids=["Enqueuer", "dedicated_client"])
def test_a_connection_used_before_fork_is_not_shared_with_the_child(
    stallable_redis: RedisProcess, namespace: str, make_push: Callable[[str, redis.Redis], Push]
) -> None:
    """gunicorn --preload, multiprocessing: parent and child write at once on what the parent used. On a shared
    socket one process would read both replies (Redis answers them in one write) and the other none."""
    admin = stallable_redis.client()
    push = make_push(namespace, redis.Redis(host=HOST, port=stallable_redis.port, socket_timeout=3))
    first = push("parent")  # the parent's thread now holds a connection
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=push_in_child, args=(push, results))
    stalled = stall(stallable_redis, FORK_STALL)
    child.start()
    try:
        parent_id = push("parent")
        child_id = results.get(timeout=30)
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    stalled.read_response()

    stored = stored_ids(admin, namespace)
    report(f"fork {make_push.__name__}", written=3, stored=len(stored), distinct=len(set(stored)))
    assert isinstance(child_id, str) and len(child_id) == 24, f"the child's write failed: {child_id}"
    assert sorted(stored) == sorted([first, parent_id, child_id])
    assert push("parent") in stored_ids(admin, namespace), "the parent's connection still works"
