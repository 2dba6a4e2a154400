"""Cron schedules on a 3-master Redis Cluster (namespace in braces): pools publish their specs, the scheduled set
is listed with ticks apart from one-off jobs, and the tick pruner's script (every key it touches in KEYS) drops
the future ticks of a spec no pool registers any more."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support import SteppedClock, wait_until
from topologies.conftest import PoolMaker
from topologies.servers import Cluster
from workq import Client, Enqueuer, Job
from workq.keys import Keys
from workq.scripts import Scripts
from workq.tick_pruner import UNREGISTERED_GRACE, TickPruner

NAMESPACE = "{crons}"
EVERY_10S = "*/10 * * * * *"


@pytest.fixture(autouse=True)
def empty_cluster(cluster: Cluster) -> Iterator[None]:
    yield
    cluster.flush()


def test_schedules_split_and_pruning_work_on_a_cluster(cluster: Cluster, make_pool: PoolMaker) -> None:
    pool = make_pool(NAMESPACE, cluster.url, concurrency=1)
    pool.job("report", lambda job: None)
    pool.periodically_enqueue(EVERY_10S, "report")
    pool.start()
    client = Client(NAMESPACE, cluster.url)
    wait_until(lambda: client.scheduled_jobs(kind="cron")[1] >= 20, timeout=20, what="the first cron pass")
    one_off = Enqueuer(NAMESPACE, cluster.url).enqueue_in("report", 600)
    [schedule] = client.schedules()
    assert (schedule.job_name, schedule.spec, schedule.pool_ids) == ("report", EVERY_10S, [pool.pool_id])
    assert [job.id for job in client.scheduled_jobs(kind="one_off")[0]] == [one_off.id]

    pool.stop()
    redis = cluster.client()
    now = float(redis.time()[0])
    clock = SteppedClock(now)
    pruner = TickPruner(redis, Keys(NAMESPACE), Scripts.register(redis), clock)
    pruner.prune()
    clock.now = now + UNREGISTERED_GRACE
    assert pruner.prune() >= 10
    left = [Job.from_json(member) for member in redis.zrange(f"{NAMESPACE}:scheduled", 0, -1)]
    assert one_off.id in {job.id for job in left}
    assert all(job.enqueued_at <= clock.now for job in left if job.id.startswith("periodic:"))
    redis.close()
