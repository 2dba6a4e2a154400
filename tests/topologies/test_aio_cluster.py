"""AsyncEnqueuer on a 3-master Redis Cluster (`redis+cluster://` or a redis.asyncio.RedisCluster): every variant
stores the same bytes as the sync Enqueuer; a stale slot map (MOVED) is followed and the job stored once; a
namespace without braces is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio
from integration.test_aio_enqueuer import VARIANTS, check_variant_stores_the_same_bytes, clear
from redis.cluster import RedisCluster

from topologies.servers import Cluster
from workq import Enqueuer, Job, WorkqError
from workq.aio import AsyncEnqueuer

NAMESPACE = "{aio}"


@pytest.fixture
def slot_owner(cluster: Cluster) -> Iterator[redis.Redis]:
    """A plain client of the node holding the namespace's slot (every key of `{aio}` is there)."""
    cluster_client = cluster.client()
    node = cluster_client.get_node_from_key(f"{NAMESPACE}:x")
    owner = redis.Redis(host=node.host, port=node.port, socket_timeout=10)
    yield owner
    clear(owner, NAMESPACE)
    owner.close()
    cluster_client.close()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_stores_the_same_bytes_as_the_sync_enqueuer_on_a_cluster(
    variant: str, cluster: Cluster, slot_owner: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    check_variant_stores_the_same_bytes(variant, cluster.url, NAMESPACE, slot_owner, monkeypatch)


def test_a_stale_slot_map_is_followed_and_the_job_stored_once(cluster: Cluster, slot_owner: redis.Redis) -> None:
    """The client is told the namespace's slot lives on another node: that node answers MOVED (nothing ran), the
    slot map is corrected and the enqueue sent again to the owner."""

    async def enqueue_through_a_wrong_node() -> tuple[Job, Job | None]:
        client = redis.asyncio.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
        async with AsyncEnqueuer(NAMESPACE, client) as enqueuer:
            await enqueuer.enqueue("warm_up")
            manager = client.nodes_manager
            slot = client.keyslot(f"{NAMESPACE}:jobs:x")
            owner = manager.slots_cache[slot][0]
            manager.slots_cache[slot] = [next(node for node in manager.nodes_cache.values() if node.name != owner.name)]
            job = await enqueuer.enqueue("x", {"n": 1})
            unique = await enqueuer.enqueue_unique("x", {"n": 2})
            assert manager.slots_cache[slot][0].name == owner.name, "the slot map was corrected"
        await client.aclose()
        return job, unique

    job, unique = asyncio.run(enqueue_through_a_wrong_node())
    stored = [Job.from_json(raw).id for raw in slot_owner.lrange(f"{NAMESPACE}:jobs:x", 0, -1)]
    assert unique is not None
    assert sorted(stored) == sorted([job.id, unique.id])


def test_a_namespace_without_braces_is_refused_on_a_cluster(cluster: Cluster) -> None:
    with pytest.raises(WorkqError, match="write it in braces"):
        AsyncEnqueuer("aio", cluster.url)
    with pytest.raises(WorkqError, match="write it in braces"):
        AsyncEnqueuer("aio", redis.asyncio.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port))


def test_the_sync_enqueuer_corrects_a_stale_slot_map_too(cluster: Cluster, slot_owner: redis.Redis) -> None:
    """The same protocol (send_rounds) drives both enqueuers: a MOVED (which redis-py makes a kind of ASK)
    corrects the slot map rather than being followed once with ASKING."""
    client = RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
    enqueuer = Enqueuer(NAMESPACE, client)
    enqueuer.enqueue("warm_up")
    manager = client.nodes_manager
    slot = client.keyslot(f"{NAMESPACE}:jobs:x")
    owner = manager.slots_cache[slot][0]
    manager.slots_cache[slot] = [next(node for node in manager.nodes_cache.values() if node.name != owner.name)]
    job = enqueuer.enqueue("x", {"n": 1})
    assert manager.slots_cache[slot][0].name == owner.name, "the slot map was corrected"
    client.close()
    assert [Job.from_json(raw).id for raw in slot_owner.lrange(f"{NAMESPACE}:jobs:x", 0, -1)] == [job.id]
