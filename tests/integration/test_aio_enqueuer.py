"""AsyncEnqueuer on real Redis: every variant stores byte for byte what the sync Enqueuer stores (same ids and
clock, same namespace, one after the other), unique enqueues stay atomic under concurrency, idle pools are woken,
and bad input or an unusable connection is refused loudly."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest
import redis
import redis.asyncio

import workq.job
from integration.pool_factory import PoolFactory
from support import wait_until
from workq import ConnectionFailed, Enqueuer, Job, WorkqError
from workq.aio import AsyncEnqueuer
from workq.keys import Keys

_T = TypeVar("_T")
NOW = 1_790_000_000.25
"""The clock both enqueuers get, so `t` and due times match."""


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coroutine)


Calls = list[tuple[str, tuple[Any, ...]]]
"""Enqueuer method names and their arguments, made one after the other on the same enqueuer."""

MANY = [{"n": n} for n in range(2500)]  # three LPUSH chunks
VARIANTS: dict[str, Calls] = {
    "enqueue": [("enqueue", ("x", {"a": 1, "b": [1.5, "é", None], "c": {"d": True}})), ("enqueue", ("x", None))],
    "enqueue_in": [("enqueue_in", ("x", 90, {"a": 1})), ("enqueue_in", ("x", 0.2, None))],
    "enqueue_unique": [("enqueue_unique", ("x", {"a": 1})), ("enqueue_unique", ("x", {"a": 1}))],
    "enqueue_unique_in": [("enqueue_unique_in", ("x", 90, {"a": 1})), ("enqueue_unique_in", ("x", 5, {"a": 1}))],
    "enqueue_unique_by_key": [
        ("enqueue_unique_by_key", ("x", {"a": 1}, {"k": 7})),
        ("enqueue_unique_by_key", ("x", {"a": 2}, {"k": 7})),
    ],
    "enqueue_unique_in_by_key": [
        ("enqueue_unique_in_by_key", ("x", 90, {"a": 1}, {"k": 7})),
        ("enqueue_unique_in_by_key", ("x", 90, {"a": 2}, {"k": 7})),
    ],
    "enqueue_many": [("enqueue_many", ("x", MANY)), ("enqueue_many", ("x", [None, {}]))],
}


def snapshot(client: redis.Redis, namespace: str) -> dict[bytes, Any]:
    """Every key of the namespace with its type and contents (sorted sets with scores; a TTL as set or not)."""
    found: dict[bytes, Any] = {}
    for key in sorted(client.scan_iter(match=f"{namespace}:*", count=1000)):
        kind = client.type(key)
        if kind == b"list":
            value: Any = client.lrange(key, 0, -1)
        elif kind == b"zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"set":
            value = sorted(client.smembers(key))
        else:
            value = client.get(key)
        found[key] = (kind, value, client.ttl(key) > 0)
    return found


def clear(client: redis.Redis, namespace: str) -> None:
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    if keys:
        client.delete(*keys)


def outcome(result: Any) -> Any:
    """What an enqueue returned, comparable across the two enqueuers."""
    if isinstance(result, list):
        return [outcome(job) for job in result]
    if isinstance(result, Job):
        return (type(result).__name__, result.to_json(), getattr(result, "run_at", None))
    return result


def check_variant_stores_the_same_bytes(
    variant: str, url: str, namespace: str, server: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> list[Any]:
    """The calls of `VARIANTS[variant]`, made by the sync Enqueuer then by AsyncEnqueuer (same job ids, same clock)
    through `url`, leave the same keys and bytes in `server` (a plain client of the node holding the namespace) and
    return the same; the namespace is left empty. Returns what the async calls returned. The topology tests run
    this through a cluster, sentinels and TLS."""
    calls = VARIANTS[variant]
    monkeypatch.setattr(workq.job, "random", random.Random(variant))  # the same job ids, in order
    sync_enqueuer = Enqueuer(namespace, url, clock=lambda: NOW)
    sync_results = [outcome(getattr(sync_enqueuer, method)(*args)) for method, args in calls]
    sync_enqueuer.redis.close()
    sync_stored = snapshot(server, namespace)
    clear(server, namespace)

    async def enqueue_async() -> list[Any]:
        async with AsyncEnqueuer(namespace, url, clock=lambda: NOW) as enqueuer:
            return [outcome(await getattr(enqueuer, method)(*args)) for method, args in calls]

    monkeypatch.setattr(workq.job, "random", random.Random(variant))
    async_results = run(enqueue_async())
    async_stored = snapshot(server, namespace)
    clear(server, namespace)

    assert sync_stored, "the sync enqueuer stored something"
    assert async_stored == sync_stored
    assert async_results == sync_results
    return async_results


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_stores_the_same_bytes_as_the_sync_enqueuer(
    variant: str, namespace: str, redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    async_results = check_variant_stores_the_same_bytes(variant, redis_url, namespace, redis_client, monkeypatch)
    if variant.startswith("enqueue_unique"):
        assert async_results[1] is None, "the second unique enqueue found the first pending"


def test_enqueue_in_uses_redis_time_not_the_local_clock(namespace: str, redis_url: str) -> None:
    async def scheduled() -> tuple[int, float]:
        async with AsyncEnqueuer(namespace, redis_url) as enqueuer:
            job = await enqueuer.enqueue_in("x", 30)
            seconds, micros = await enqueuer.redis.time()
            return job.run_at, seconds + micros / 1e6

    run_at, redis_now = scheduled_result = run(scheduled())
    assert redis_now + 29 <= run_at <= redis_now + 31, scheduled_result


def test_concurrent_unique_enqueues_store_one_job(namespace: str, redis_url: str, redis_client: redis.Redis) -> None:
    async def race() -> list[Job | None]:
        async with AsyncEnqueuer(namespace, redis_url) as enqueuer:
            return await asyncio.gather(*(enqueuer.enqueue_unique("x", {"same": True}) for _ in range(50)))

    results = run(race())
    assert sum(job is not None for job in results) == 1
    assert redis_client.llen(Keys(namespace).queue("x")) == 1
    assert Enqueuer(namespace, redis_client).enqueue_unique("x", {"same": True}) is None, "sync sees the same lock"


def test_a_client_given_is_used_and_left_open(namespace: str, redis_url: str, redis_client: redis.Redis) -> None:
    async def enqueue_twice() -> bool:
        client = redis.asyncio.Redis.from_url(redis_url)
        async with AsyncEnqueuer(namespace, client) as enqueuer:
            await enqueuer.enqueue("x")
        pinged = bool(await client.ping())
        await client.aclose()
        return pinged

    assert run(enqueue_twice())
    assert redis_client.llen(Keys(namespace).queue("x")) == 1


def test_concurrent_enqueues_on_one_enqueuer_each_store_one_job(
    namespace: str, redis_url: str, redis_client: redis.Redis
) -> None:
    async def many() -> list[Job]:
        async with AsyncEnqueuer(namespace, redis_url) as enqueuer:
            return await asyncio.gather(*(enqueuer.enqueue("x", {"n": n}) for n in range(200)))

    jobs = run(many())
    stored = [Job.from_json(raw) for raw in redis_client.lrange(Keys(namespace).queue("x"), 0, -1)]
    assert sorted(job.id for job in stored) == sorted(job.id for job in jobs)
    assert redis_client.smembers(Keys(namespace).known_jobs) == {b"x"}


def test_an_idle_pool_is_woken_by_an_async_enqueue(namespace: str, redis_url: str, redis_client: redis.Redis) -> None:
    """The wake-up pools wait for: the first enqueue after a pool marked `x` as waited for deletes the mark and
    publishes the name (a later one, on a queue its last push found non-empty, sends nothing)."""
    keys = Keys(namespace)
    listener = redis_client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(keys.wake_channel)
    redis_client.set(keys.waiting("x"), "1", px=10_000)

    async def enqueue_two() -> None:
        async with AsyncEnqueuer(namespace, redis_url) as enqueuer:
            await enqueuer.enqueue("x")
            await enqueuer.enqueue("x")  # the queue holds a job now (and the mark is gone)
            redis_client.set(keys.waiting("x"), "1", px=10_000)
            await enqueuer.enqueue("x")

    run(enqueue_two())
    messages = []
    quiet_until = time.monotonic() + 1.5  # long enough for a second message, were one sent
    while time.monotonic() < quiet_until:
        message = listener.get_message(timeout=0.1)  # None also for the (ignored) subscribe confirmation
        if message is not None:
            messages.append(message["data"])
    listener.close()
    assert messages == [b"x"]


def test_a_started_pool_runs_what_an_async_enqueuer_enqueued(make_pool: PoolFactory, redis_url: str) -> None:
    pool = make_pool()
    seen: list[dict[str, Any]] = []
    pool.job("x", lambda job: seen.append(job.args))

    async def enqueue() -> None:
        async with AsyncEnqueuer(pool.namespace, redis_url) as enqueuer:
            await enqueuer.enqueue("x", {"n": 1})
            await enqueuer.enqueue_unique("x", {"n": 2})
            await enqueuer.enqueue_many("x", [{"n": 3}])
            await enqueuer.enqueue_in("x", 0, {"n": 4})

    pool.start()
    run(enqueue())
    wait_until(lambda: len(seen) == 4, timeout=30, what="four jobs run (the scheduled one by the requeuer)")
    assert sorted(args["n"] for args in seen) == [1, 2, 3, 4]


Refusal = Callable[[AsyncEnqueuer], Awaitable[object]]
BAD_CALLS: dict[str, tuple[Refusal, type[Exception]]] = {
    "args not a dict": (lambda e: e.enqueue("x", [1]), TypeError),  # type: ignore[arg-type]
    "args not JSON": (lambda e: e.enqueue("x", {"a": object()}), TypeError),
    "NaN": (lambda e: e.enqueue_many("x", [{"a": float("nan")}]), TypeError),
    "name with a colon": (lambda e: e.enqueue("a:b"), ValueError),
    "empty name": (lambda e: e.enqueue_unique(""), ValueError),
    "infinite delay": (lambda e: e.enqueue_in("x", float("inf")), TypeError),
    "delay past 100 years": (lambda e: e.enqueue_unique_in("x", 10**17), ValueError),
    "key not JSON": (lambda e: e.enqueue_unique_by_key("x", {}, {"k": {1, 2}}), TypeError),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_input_is_refused_before_redis_is_touched(case: str, namespace: str, redis_client: redis.Redis) -> None:
    call, error = BAD_CALLS[case]

    async def attempt() -> None:
        async with AsyncEnqueuer(namespace, "redis://127.0.0.1:1/0") as enqueuer:  # nothing listens there
            with pytest.raises(error):
                await call(enqueuer)

    run(attempt())


def test_unusable_connections_are_refused_loudly(redis_url: str) -> None:
    with pytest.raises(TypeError, match=r"redis.asyncio client or a URL string, got redis.client.Redis"):
        AsyncEnqueuer("ns", redis.Redis())  # type: ignore[arg-type]
    with pytest.raises(WorkqError, match=r"cannot be used on Redis Cluster: write it in braces"):
        AsyncEnqueuer("ns", "redis+cluster://127.0.0.1:7000")
    with pytest.raises(ValueError, match="invalid Redis URL"):
        AsyncEnqueuer("ns", "redis://127.0.0.1:notaport/0")

    async def unreachable() -> None:
        async with AsyncEnqueuer("ns", "redis://127.0.0.1:1/0") as enqueuer:
            with pytest.raises(ConnectionFailed, match=r"cannot reach Redis at 127.0.0.1:1/0") as raised:
                await enqueuer.enqueue("x")
            assert type(raised.value) is ConnectionFailed, "nothing was written: not MaybeEnqueued"
            with pytest.raises(ConnectionFailed):
                await enqueuer.enqueue_in("x", 5)

    run(unreachable())
