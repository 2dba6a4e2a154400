"""AsyncEnqueuer and async handlers through `redis+sentinel://`: every enqueue variant stores on the master what the
sync Enqueuer stores; a pool's `async def` handlers run what it enqueued; and after a failover (SENTINEL FAILOVER:
the old master is demoted to a replica, so a connection to it answers READONLY or is closed) the next enqueue
finds the new master and stores one copy. The failover test comes last: the group keeps its new master after it."""

from __future__ import annotations

import asyncio

import pytest
import redis
from integration.test_aio_enqueuer import VARIANTS, check_variant_stores_the_same_bytes

from support import wait_until
from topologies.async_checks import check_async_handlers_run_async_enqueues
from topologies.conftest import PoolMaker
from topologies.servers import SERVICE, RedisProcess, SentinelGroup
from workq import Job
from workq.aio import AsyncEnqueuer
from workq.connection import resolve_redis

NAMESPACE = "aio-sentinel"


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_stores_the_same_bytes_as_the_sync_enqueuer_through_sentinels(
    variant: str, sentinel_group: SentinelGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    master = resolve_redis(sentinel_group.url)  # whichever server the sentinels name
    assert isinstance(master, redis.Redis)
    check_variant_stores_the_same_bytes(variant, sentinel_group.url, NAMESPACE, master, monkeypatch)
    master.close()


def test_async_handlers_run_what_the_async_enqueuer_enqueued_through_sentinels(
    sentinel_group: SentinelGroup, make_pool: PoolMaker
) -> None:
    check_async_handlers_run_async_enqueues(sentinel_group.url, "aio-sentinel-jobs", make_pool)


def role(server: RedisProcess) -> str:
    with server.client(socket_timeout=1) as client:
        return str(client.info("replication").get("role"))


def test_enqueues_follow_a_sentinel_failover(sentinel_group: SentinelGroup) -> None:
    old_master, old_replica = sentinel_group.master, sentinel_group.replica

    async def enqueue_across_a_failover() -> tuple[Job, Job]:
        async with AsyncEnqueuer(NAMESPACE, sentinel_group.url) as enqueuer:
            before = await enqueuer.enqueue("x", {"n": 1})
            await enqueuer.enqueue_unique("warm_up", {})  # a second pooled connection to the old master
            with sentinel_group.sentinels[0].client() as sentinel:
                sentinel.sentinel_failover(SERVICE)
            wait_until(sentinel_group.replica_promoted, timeout=30, what="the replica promoted")
            wait_until(lambda: role(old_master) == "slave", timeout=30, what="the old master demoted")
            after = await enqueuer.enqueue_unique("x", {"n": 2})
            assert after is not None
            return before, after

    before, after = asyncio.run(enqueue_across_a_failover())
    with old_replica.client() as new_master:
        wait_until(lambda: new_master.llen(f"{NAMESPACE}:jobs:x") == 2, timeout=10, what="both jobs on the master")
        stored = [Job.from_json(raw).id for raw in new_master.lrange(f"{NAMESPACE}:jobs:x", 0, -1)]
    assert sorted(stored) == sorted([before.id, after.id])
