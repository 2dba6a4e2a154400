"""Client on fakeredis with an injected clock: pause flags, queue counts and latency, live pools and what their
workers run, read from keys written as any gocraft/work-compatible pool writes them."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest

from workq.client import Client, Queue, WorkerObservation, WorkerPoolHeartbeat
from workq.job import Job
from workq.keys import Keys

NOW = 1_700_000_000


@pytest.fixture
def client(fake_redis: fakeredis.FakeRedis, namespace: str) -> Client:
    return Client(namespace, fake_redis, clock=lambda: NOW + 0.9)


def enqueue(redis_client: fakeredis.FakeRedis, keys: Keys, name: str, enqueued_at: int) -> None:
    redis_client.sadd(keys.known_jobs, name)
    redis_client.lpush(keys.queue(name), Job(name=name, id=f"{name}{enqueued_at}", enqueued_at=enqueued_at).to_json())


# --- pause ---------------------------------------------------------------------------------------------------


def test_pause_sets_the_flag_fetch_reads_and_unpause_deletes_it(
    client: Client, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    client.pause("send_email")
    assert fake_redis.exists(keys.paused("send_email")) == 1
    assert client.is_paused("send_email")
    assert not client.is_paused("other")

    client.unpause("send_email")
    assert fake_redis.exists(keys.paused("send_email")) == 0
    assert not client.is_paused("send_email")


def test_pausing_twice_and_unpausing_what_is_not_paused_are_harmless(client: Client) -> None:
    client.pause("a")
    client.pause("a")
    client.unpause("b")
    assert client.is_paused("a") and not client.is_paused("b")


def test_a_flag_set_by_another_tool_counts_as_paused(
    client: Client, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    fake_redis.set(keys.paused("a"), "true")
    assert client.is_paused("a")


@pytest.mark.parametrize("name", ["", "a:b", "a b", "a\nb"])
def test_bad_job_names_are_refused_before_redis_is_touched(
    client: Client, fake_redis: fakeredis.FakeRedis, name: str
) -> None:
    for call in (client.pause, client.unpause, client.is_paused):
        with pytest.raises(ValueError):
            call(name)
    assert fake_redis.keys("*") == []


# --- queues --------------------------------------------------------------------------------------------------


def test_queues_lists_every_known_name_sorted_with_count_and_latency_of_the_next_job(
    client: Client, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    enqueue(fake_redis, keys, "resize", NOW - 90)
    enqueue(fake_redis, keys, "resize", NOW - 10)
    enqueue(fake_redis, keys, "email", NOW - 5)
    fake_redis.sadd(keys.known_jobs, "cleanup")

    assert client.queues() == [
        Queue("cleanup", 0, 0),
        Queue("email", 1, 5),
        Queue("resize", 2, 90),
    ]


def test_queue_latency_follows_the_clock(fake_redis: fakeredis.FakeRedis, namespace: str, keys: Keys) -> None:
    now = [float(NOW)]
    client = Client(namespace, fake_redis, clock=lambda: now[0])
    enqueue(fake_redis, keys, "a", NOW)
    assert client.queues() == [Queue("a", 1, 0)]
    now[0] = NOW + 42.7
    assert client.queues() == [Queue("a", 1, 42)]


def test_queue_latency_is_never_negative_and_zero_for_an_unreadable_job(
    client: Client, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    enqueue(fake_redis, keys, "future", NOW + 300)  # enqueued by a host whose clock runs ahead
    fake_redis.sadd(keys.known_jobs, "garbage")
    fake_redis.lpush(keys.queue("garbage"), b"not json")
    future, garbage = client.queues()
    assert future == Queue("future", 1, 0)
    assert (garbage.job_name, garbage.count, garbage.latency) == ("garbage", 1, 0)
    assert "not valid" in garbage.problem, "the unreadable job is marked, not hidden"


def test_queues_of_an_empty_namespace_is_empty(client: Client) -> None:
    assert client.queues() == []


# --- pools and workers ---------------------------------------------------------------------------------------


def pool_hash(heartbeat_at: int, job_names: str, worker_ids: str) -> dict[Any, Any]:
    return {
        "heartbeat_at": heartbeat_at,
        "started_at": NOW - 3600,
        "job_names": job_names,
        "concurrency": 2,
        "worker_ids": worker_ids,
        "host": "web-1",
        "pid": 4242,
    }


def test_worker_pool_heartbeats_reads_every_registered_pool_sorted_by_id(
    client: Client, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    fake_redis.sadd(keys.worker_pools, "p2", "p1")
    fake_redis.hset(keys.worker_pool("p1"), mapping=pool_hash(NOW - 1, "a,b", "w1,w2"))
    fake_redis.hset(keys.worker_pool("p2"), mapping=pool_hash(NOW, "c", "w3"))

    assert client.worker_pool_heartbeats() == [
        WorkerPoolHeartbeat("p1", NOW - 3600, NOW - 1, ["a", "b"], 2, "web-1", 4242, ["w1", "w2"]),
        WorkerPoolHeartbeat("p2", NOW - 3600, NOW, ["c"], 2, "web-1", 4242, ["w3"]),
    ]


def test_a_registered_pool_without_a_hash_is_not_listed(
    client: Client, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    fake_redis.sadd(keys.worker_pools, "gone")
    assert client.worker_pool_heartbeats() == []


def test_worker_observations_show_busy_and_idle_workers_of_live_pools_only(
    client: Client, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    fake_redis.sadd(keys.worker_pools, "p1")
    fake_redis.hset(keys.worker_pool("p1"), mapping=pool_hash(NOW, "a", "w2,w1"))
    fake_redis.hset(
        keys.worker("w1"),
        mapping={
            "job_name": "a",
            "job_id": "j1",
            "started_at": NOW - 20,
            "args": '{"n": 1}',
            "checkin": "half way",
            "checkin_at": NOW - 2,
        },
    )
    fake_redis.hset(keys.worker("stray"), mapping={"job_name": "a", "job_id": "j9"})  # of no live pool

    assert client.worker_observations() == [
        WorkerObservation("w1", True, "a", "j1", NOW - 20, '{"n": 1}', "half way", NOW - 2),
        WorkerObservation("w2", False, "", "", 0, "", "", 0),
    ]
