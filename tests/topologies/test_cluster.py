"""workq on a 3-master Redis Cluster through a `redis+cluster://` URL: with a namespace in braces every key of the
namespace is in one slot, so the core, scheduling and reliability features work unchanged; namespaces with
different hash tags spread over the shards; a namespace without braces is refused when the object is made."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import cast

import pytest
import redis
from redis.cluster import RedisCluster
from reliability import app as reliability_app
from reliability.harness import WorkerProcess, in_progress_ids, runs_by_job

from support import wait_until
from topologies.conftest import PoolMaker
from topologies.servers import TESTS_DIR, Cluster, elapsed_since, report
from workq import Client, Enqueuer, Job, WorkerPool, WorkqError

NAMESPACE = "{app}"


@pytest.fixture(autouse=True)
def empty_cluster(cluster: Cluster) -> Iterator[None]:
    """Every node is flushed after each test (autouse: torn down after the test's pools stop)."""
    yield
    cluster.flush()


@pytest.fixture
def cluster_client(cluster: Cluster) -> Iterator[RedisCluster]:
    client = cluster.client()
    yield client
    client.close()


class Runs:
    """What in-process handlers ran: job ids (or any label) counted, and the threads that ran them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.threads: set[str] = set()

    def add(self, label: str) -> None:
        with self._lock:
            self.counts[label] += 1
            self.threads.add(threading.current_thread().name)


def test_jobs_enqueued_through_a_cluster_url_run_on_a_pool_of_threads(
    cluster: Cluster, cluster_client: RedisCluster, make_pool: PoolMaker
) -> None:
    runs = Runs()
    pool = make_pool(NAMESPACE, cluster.url, concurrency=6)

    @pool.job("add")
    def add(job: Job) -> None:
        time.sleep(0.005)  # long enough for several threads to hold a job at once
        runs.add(job.id)

    enqueuer = Enqueuer(NAMESPACE, cluster.url)
    jobs = [enqueuer.enqueue("add", {"n": -1}), *enqueuer.enqueue_many("add", [{"n": n} for n in range(300)])]
    pool.start()
    pool.drain(timeout=30)

    assert runs.counts == Counter(job.id for job in jobs)
    assert len(runs.threads) > 1
    client = Client(NAMESPACE, cluster.url)
    assert [(queue.job_name, queue.count) for queue in client.queues()] == [("add", 0)]
    assert [(stats.job_name, stats.processed, stats.failed) for stats in client.job_stats()] == [("add", 301, 0)]
    slots = {cluster.keyslot(key.decode()) for key in cluster_client.scan_iter(match="*")}
    assert slots == {cluster.keyslot(NAMESPACE)}, "every key of the namespace is in its hash tag's slot"


def test_async_handlers_run_once_on_a_cluster_and_fail_into_the_dead_set(
    cluster: Cluster, cluster_client: RedisCluster, make_pool: PoolMaker
) -> None:
    """The async runner's pipelined fetch-and-ack falls back to one call at a time on a cluster client."""
    runs = Runs()
    pool = make_pool(NAMESPACE, cluster.url, async_concurrency=20)

    @pool.job("add")
    async def add(job: Job) -> None:
        await asyncio.sleep(0.005)  # long enough for several jobs to be in flight at once
        runs.add(job.id)

    @pool.job("doomed", max_fails=1)
    async def doomed(job: Job) -> None:
        raise RuntimeError("upstream down")

    enqueuer = Enqueuer(NAMESPACE, cluster.url)
    jobs = enqueuer.enqueue_many("add", [{"n": n} for n in range(200)])
    failed = enqueuer.enqueue("doomed")
    pool.start()
    pool.drain(timeout=30)

    assert runs.counts == Counter(job.id for job in jobs)
    client = Client(NAMESPACE, cluster.url)
    dead = wait_until(lambda: client.dead_jobs()[0], timeout=15, what="the failed async job in the dead set")
    assert [(entry.id, entry.fails) for entry in dead] == [(failed.id, 1)]
    slots = {cluster.keyslot(key.decode()) for key in cluster_client.scan_iter(match="*")}
    assert slots == {cluster.keyslot(NAMESPACE)}, "every key of the namespace is in its hash tag's slot"


def test_a_failing_job_retries_then_dies_and_the_client_brings_it_back(cluster: Cluster, make_pool: PoolMaker) -> None:
    failing = threading.Event()
    failing.set()
    attempts = Runs()
    pool = make_pool(NAMESPACE, cluster.url, concurrency=2)

    @pool.job("flaky", max_fails=2, backoff=lambda job: 0)
    def flaky(job: Job) -> None:
        attempts.add(job.id)
        if failing.is_set():
            raise RuntimeError("upstream down")

    job = Enqueuer(NAMESPACE, cluster.url).enqueue("flaky", {"user": 7})
    client = Client(NAMESPACE, cluster.url)
    pool.start()

    dead = wait_until(lambda: client.dead_jobs()[0], timeout=15, what="the job to die after two failures")
    assert [(entry.id, entry.fails) for entry in dead] == [(job.id, 2)]
    assert "upstream down" in dead[0].last_err
    assert attempts.counts[job.id] == 2
    assert client.retry_jobs() == ([], 0)

    failing.clear()
    client.retry_dead_job(dead[0].died_at, job.id)
    wait_until(lambda: attempts.counts[job.id] == 3, timeout=10, what="the retried dead job to run")
    assert client.dead_jobs() == ([], 0)
    pool.drain(timeout=10)
    assert [(stats.processed, stats.failed) for stats in client.job_stats()] == [(1, 2)]


def test_eight_racing_unique_enqueues_add_one_job(cluster: Cluster, make_pool: PoolMaker) -> None:
    enqueuers = [Enqueuer(NAMESPACE, cluster.url) for _ in range(8)]
    start = threading.Barrier(len(enqueuers))
    results: list[Job | None] = []
    results_lock = threading.Lock()

    def race(enqueuer: Enqueuer) -> None:
        start.wait()
        job = enqueuer.enqueue_unique("rebuild", {"shop": 7})
        with results_lock:
            results.append(job)

    threads = [threading.Thread(target=race, args=(enqueuer,)) for enqueuer in enqueuers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    winners = [job for job in results if job is not None]
    assert len(results) == 8 and len(winners) == 1
    client = Client(NAMESPACE, cluster.url)
    assert [job.id for job in client.peek("rebuild")] == [winners[0].id]

    runs = Runs()
    pool = make_pool(NAMESPACE, cluster.url, concurrency=2)
    pool.job("rebuild", lambda job: runs.add(job.id))
    pool.start()
    pool.drain(timeout=10)
    assert runs.counts == Counter({winners[0].id: 1})
    assert enqueuers[0].enqueue_unique("rebuild", {"shop": 7}) is not None, "the lock is released once it ran"


def test_a_delayed_job_is_requeued_when_due(cluster: Cluster, make_pool: PoolMaker) -> None:
    ran_at: dict[str, float] = {}
    pool = make_pool(NAMESPACE, cluster.url, concurrency=2)
    pool.job("later", lambda job: ran_at.setdefault(job.id, time.time()))
    scheduled = Enqueuer(NAMESPACE, cluster.url).enqueue_in("later", 1, {"report": "weekly"})
    client = Client(NAMESPACE, cluster.url)
    assert [(job.id, job.run_at) for job in client.scheduled_jobs()[0]] == [(scheduled.id, scheduled.run_at)]

    pool.start()
    wait_until(lambda: scheduled.id in ran_at, timeout=10, what="the delayed job to run")
    assert ran_at[scheduled.id] >= scheduled.run_at
    assert client.scheduled_jobs() == ([], 0)


def test_a_cron_schedule_on_two_pools_runs_once_per_tick(cluster: Cluster, make_pool: PoolMaker) -> None:
    runs = Runs()
    spec = "* * * * * *"
    pools = [make_pool(NAMESPACE, cluster.url, concurrency=2) for _ in range(2)]
    for pool in pools:
        pool.periodic(spec, name="tick")(lambda job: runs.add(job.id))
    for pool in pools:
        pool.start()

    wait_until(lambda: len(runs.counts) >= 4, timeout=15, what="four cron ticks to run")
    for pool in pools:
        pool.stop()

    ticks = sorted(int(job_id.rpartition(":")[2]) for job_id in runs.counts)
    assert set(runs.counts.values()) == {1}, f"a tick ran twice: {runs.counts}"
    assert ticks == list(range(ticks[0], ticks[-1] + 1)), f"a tick was skipped: {ticks}"
    assert all(job_id.startswith(f"periodic:tick:{spec}:") for job_id in runs.counts)


def test_a_killed_workers_jobs_are_recovered_by_another_pool(
    cluster: Cluster, cluster_client: RedisCluster, tmp_path: Path
) -> None:
    """`workq worker` (reliability.app, heartbeat 0.2 s, dead after 2 s) on the cluster, kill -9 mid-jobs: an
    in-process pool's reaper hands the stranded jobs back and they run."""
    as_plain_client = cast(redis.Redis, cluster_client)  # the harness only makes single-key calls, which both have

    def done() -> Counter[str]:
        return runs_by_job(as_plain_client, NAMESPACE)

    worker = WorkerProcess(cluster.url, NAMESPACE, tmp_path / "worker.log", concurrency=4)
    rescuer: WorkerPool | None = None
    try:
        first_pool = worker.pool_id()
        jobs = Enqueuer(NAMESPACE, cluster.url).enqueue_many("work", [{"seconds": 0.2} for _ in range(30)])
        ids = {job.id for job in jobs}
        wait_until(lambda: done().total() >= 6, timeout=20, what="six jobs to finish")

        worker.kill()
        killed_at = time.monotonic()
        stranded = in_progress_ids(as_plain_client, NAMESPACE, "work", first_pool)
        runs_at_kill = done()
        assert stranded, "the killed worker held no job"

        rescuer = reliability_app.make_pool()
        rescuer.configure(namespace=NAMESPACE, redis=cluster.url)
        rescuer.start()
        wait_until(
            lambda: all(done()[job_id] > runs_at_kill[job_id] for job_id in stranded),
            timeout=20,
            what="the stranded jobs to run again",
        )
        recovery = elapsed_since(killed_at)
        wait_until(lambda: ids <= set(done()), timeout=20, what="every job to run")
        live = {beat.worker_pool_id for beat in Client(NAMESPACE, cluster.url).worker_pool_heartbeats()}
        assert first_pool not in live
        assert set(done()) == ids
        report("cluster kill -9", jobs=len(ids), stranded=len(stranded), recovery_s=recovery)
    finally:
        if rescuer is not None:
            rescuer.stop(grace=10)
        worker.close()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workq", *args], cwd=TESTS_DIR, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_cli_reads_and_repairs_a_cluster_namespace(cluster: Cluster, cluster_client: RedisCluster) -> None:
    enqueuer = Enqueuer(NAMESPACE, cluster.url)
    enqueuer.enqueue_many("resize", [{"path": f"/img/{n}.png"} for n in range(3)])
    connection = ["--redis-url", cluster.url, "--namespace", NAMESPACE]

    queues = _cli("queues", "--json", *connection)
    assert queues.returncode == 0, queues.stderr
    assert [(row["job_name"], row["count"]) for row in json.loads(queues.stdout)] == [("resize", 3)]

    enqueued = _cli("enqueue", "report", "--args", '{"day": "monday"}', "--in", "60", *connection)
    assert enqueued.returncode == 0, enqueued.stderr
    scheduled = json.loads(_cli("scheduled", "--json", *connection).stdout)
    assert [(job["name"], job["args"]) for job in scheduled["jobs"]] == [("report", {"day": "monday"})]

    cluster_client.zadd(f"{NAMESPACE}:dead", {Job(name="resize", args={"path": "/x"}).to_json(): 1})
    dead = json.loads(_cli("dead", "--json", *connection).stdout)
    assert dead["total"] == 1
    retried = _cli("retry-dead", "--all", *connection)
    assert retried.returncode == 0, retried.stderr
    assert "requeued 1 dead job" in retried.stdout
    assert [(queue.job_name, queue.count) for queue in Client(NAMESPACE, cluster.url).queues()] == [
        ("report", 0),
        ("resize", 4),
    ]

    cluster_client.zadd(f"{NAMESPACE}:dead", {Job(name="resize", args={"path": "/y"}).to_json(): 2})
    deleted = _cli("delete-dead", "--all", *connection)  # a MULTI/EXEC transaction, in the namespace's slot
    assert deleted.returncode == 0, deleted.stderr
    assert "deleted 1 dead job" in deleted.stdout
    assert cluster_client.zcard(f"{NAMESPACE}:dead") == 0

    refused = _cli("queues", "--redis-url", cluster.url, "--namespace", "app")
    assert refused.returncode == 1
    assert "braces" in refused.stderr and "'{app}'" in refused.stderr


def test_namespaces_with_different_hash_tags_live_on_different_shards(
    cluster: Cluster, cluster_client: RedisCluster, make_pool: PoolMaker
) -> None:
    namespaces = ("{a}", "{b}")
    owners = {namespace: cluster.node_holding(f"{namespace}:jobs:resize") for namespace in namespaces}
    assert owners["{a}"].port != owners["{b}"].port, "the hash tags a and b map to slots of different masters"

    runs = Runs()
    for namespace in namespaces:
        Enqueuer(namespace, cluster.url).enqueue_many("resize", [{"n": n} for n in range(20)])
        pool = make_pool(namespace, cluster.url, concurrency=2)
        pool.job("resize", partial(_count_namespace, runs, namespace))
        pool.start()
        pool.drain(timeout=20)
    assert runs.counts == Counter({"{a}": 20, "{b}": 20})

    slots = {}
    for namespace in namespaces:
        with owners[namespace].client() as shard:
            keys = sorted(key.decode() for key in shard.scan_iter(match=f"{namespace}:*"))
        assert f"{namespace}:known_jobs" in keys and f"{namespace}:stats:" in " ".join(keys)
        slots[namespace] = {cluster.keyslot(key) for key in keys}
        for other in cluster.nodes:
            if other is not owners[namespace]:
                with other.client() as shard:
                    assert not list(shard.scan_iter(match=f"{namespace}:*")), f"a {namespace} key on another shard"
    report(
        "cluster shards",
        a_slot=slots["{a}"],
        a_port=owners["{a}"].port,
        b_slot=slots["{b}"],
        b_port=owners["{b}"].port,
    )


def _count_namespace(runs: Runs, namespace: str, job: Job) -> None:
    runs.add(namespace)


@pytest.mark.parametrize("make", [Enqueuer, WorkerPool, Client], ids=lambda make: make.__name__)
def test_a_namespace_without_braces_is_refused_on_a_cluster(
    make: type[Enqueuer | WorkerPool | Client], cluster: Cluster, cluster_client: RedisCluster
) -> None:
    for connection in (cluster.url, cluster_client):
        with pytest.raises(WorkqError, match=r"namespace 'app' cannot be used on Redis Cluster: write it in braces"):
            make("app", connection)
    make("{app}", cluster.url)


def test_configuring_a_cluster_pool_without_braces_is_refused(cluster: Cluster) -> None:
    pool = WorkerPool(NAMESPACE, cluster.url)
    with pytest.raises(WorkqError, match="braces"):
        pool.configure(namespace="app")
    plain = WorkerPool("app", "redis://127.0.0.1:1/0")
    with pytest.raises(WorkqError, match="braces"):
        plain.configure(redis=cluster.url)


def test_a_cluster_url_takes_the_query_options_redis_urls_take(cluster: Cluster) -> None:
    Enqueuer(NAMESPACE, cluster.url + "?socket_timeout=5").enqueue("resize")


def test_a_cluster_url_from_the_environment_is_checked_too(
    cluster: Cluster, cluster_client: RedisCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKQ_REDIS_URL", cluster.url)
    with pytest.raises(WorkqError, match="braces"):
        Enqueuer("app").enqueue("resize")
