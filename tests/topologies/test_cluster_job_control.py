"""Job control on a 3-master Redis Cluster with a namespace in braces: every script gets all the keys it touches
(one slot), so cancel in every state, delete, purge (RENAME within the slot) and status work unchanged."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster

from topologies.conftest import PoolMaker
from topologies.servers import Cluster
from workq import Client, Enqueuer, Job

NAMESPACE = "{ctl}"


@pytest.fixture(autouse=True)
def empty_cluster(cluster: Cluster) -> Iterator[None]:
    yield
    cluster.flush()


def test_cancel_delete_purge_and_status_on_a_cluster(cluster: Cluster, make_pool: PoolMaker) -> None:
    client = Client(NAMESPACE, cluster.url)
    enqueuer = Enqueuer(NAMESPACE, cluster.url)
    queued = enqueuer.enqueue_many("email", [{"n": n} for n in range(5)])
    unique = enqueuer.enqueue_unique("email", {"to": "a"})
    scheduled = enqueuer.enqueue_in("email", 3600, {})
    assert unique is not None
    assert client.cancel(queued[2].id) == "queued"
    assert client.cancel(unique.id) == "queued"
    assert enqueuer.enqueue_unique("email", {"to": "a"}) is not None, "the lock was released"
    assert client.cancel(scheduled.id) == "scheduled"
    client.delete_queued_job("email", queued[0].id)
    status = client.job_status(queued[2].id)
    assert status is not None and status.state == "cancelled"
    assert client.purge("email") == 4
    assert client.queued_jobs("email") == ([], 0)

    started, release = threading.Event(), threading.Event()

    def block(job: Job) -> None:
        started.set()
        release.wait(30)

    pool = make_pool(NAMESPACE, cluster.url, concurrency=1)
    pool.job("slow", block, max_fails=1)
    pool.start()
    running = enqueuer.enqueue("slow", {})
    try:
        assert started.wait(20)
        status = client.job_status(running.id)
        assert status is not None and status.state == "running"
        assert client.cancel(running.id) == "running"
        raw: RedisCluster = cluster.client()
        try:
            requested = bool(raw.exists(client.keys.cancel_request(running.id)))
            after = client.job_status(running.id)
            assert requested or (after is not None and after.state == "dead"), "requested, or acted on already"
        finally:
            raw.close()
    finally:
        release.set()
