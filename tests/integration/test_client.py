"""Client and the `workq pause` / `workq unpause` commands on a real Redis, with a running pool where it matters."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import redis

from integration.job_log import JobLog
from integration.namespace_view import NamespaceView
from integration.pool_factory import PoolFactory
from support import wait_until
from workq import Client, Enqueuer, Job
from workq.client import Queue


def workq(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workq", *argv], check=False, capture_output=True, text=True, timeout=30
    )


def test_pausing_a_name_stops_a_running_pool_fetching_it_until_unpaused(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, namespace: str, redis_client: redis.Redis
) -> None:
    client = Client(namespace, redis_client)
    log = JobLog()
    pool = make_pool(concurrency=2)
    pool.job("held", log.record)
    pool.job("flowing", log.record)
    pool.start()

    client.pause("held")
    held = enqueuer.enqueue_many("held", [{"i": i} for i in range(3)])
    enqueuer.enqueue_many("flowing", [{"i": i} for i in range(20)])
    log.wait_for(20, timeout=5)

    assert {job.name for job in log.jobs} == {"flowing"}, "a paused name was fetched"
    assert len(view.queued("held")) == 3
    assert client.is_paused("held")

    client.unpause("held")
    log.wait_for(23, timeout=5)
    assert sorted(job.id for job in log.jobs if job.name == "held") == sorted(job.id for job in held)
    assert not client.is_paused("held")


def test_a_job_running_when_its_name_is_paused_finishes(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, namespace: str, redis_client: redis.Redis
) -> None:
    started, finish = threading.Event(), threading.Event()
    log = JobLog()
    pool = make_pool(concurrency=1)
    pool.job("marker", log.record)

    @pool.job("long")
    def long(job: Job) -> None:
        started.set()
        finish.wait(10)
        log.record(job)

    running = enqueuer.enqueue("long")
    pool.start()
    assert started.wait(5)
    Client(namespace, redis_client).pause("long")
    waiting = enqueuer.enqueue("long")
    enqueuer.enqueue_many("marker", [{"i": i} for i in range(20)])
    finish.set()

    assert [job.id for job in log.wait_for(21, timeout=5) if job.name == "long"] == [running.id]
    assert [Job.from_json(raw).id for raw in view.queued("long")] == [waiting.id]
    assert view.in_progress("long", pool.pool_id) == []


def test_worker_observations_show_the_running_job_then_an_idle_worker(
    make_pool: PoolFactory, enqueuer: Enqueuer, namespace: str, redis_client: redis.Redis, release: threading.Event
) -> None:
    client = Client(namespace, redis_client)
    pool = make_pool(concurrency=2)
    pool.job("render", lambda job: release.wait(10))
    job = enqueuer.enqueue("render", {"page": 7})
    pool.start()

    [busy] = wait_until(
        lambda: [seen for seen in client.worker_observations() if seen.is_busy], timeout=5, what="a busy worker"
    )
    assert (busy.job_name, busy.job_id, busy.checkin) == ("render", job.id, "")
    assert json.loads(busy.args_json) == {"page": 7}
    assert busy.started_at >= job.enqueued_at
    assert len(client.worker_observations()) == 2, "one observation per worker of the pool, busy or not"

    release.set()
    wait_until(
        lambda: not any(seen.is_busy for seen in client.worker_observations()), timeout=5, what="the worker to idle"
    )


def test_queues_counts_and_latency_on_real_redis(enqueuer: Enqueuer, namespace: str, redis_client: redis.Redis) -> None:
    first = enqueuer.enqueue("b")
    enqueuer.enqueue("b")
    enqueuer.enqueue_in("a", 3600)  # known, but nothing queued yet
    client = Client(namespace, redis_client, clock=lambda: first.enqueued_at + 12.5)
    assert client.queues() == [Queue("a", 0, 0), Queue("b", 2, 12)]


# --- the command line ----------------------------------------------------------------------------------------


def test_workq_pause_and_unpause_set_and_delete_the_paused_flag(
    redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    flag = f"{namespace}:jobs:send_email:paused"

    paused = workq("pause", "send_email", "--redis-url", redis_url, "--namespace", namespace)
    assert paused.returncode == 0, paused.stderr
    assert redis_client.exists(flag) == 1
    assert Client(namespace, redis_client).is_paused("send_email")

    unpaused = workq("unpause", "send_email", "--redis-url", redis_url, "--namespace", namespace)
    assert unpaused.returncode == 0, unpaused.stderr
    assert redis_client.exists(flag) == 0


def test_workq_pause_of_a_bad_name_exits_2_with_one_line_and_sets_nothing(
    redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    for command in ("pause", "unpause"):
        for name in ("bad name", "a:b"):
            result = workq(command, name, "--redis-url", redis_url, "--namespace", namespace)
            assert result.returncode == 2, (command, name, result.stderr)
            assert result.stderr.startswith("workq: ") and result.stderr.count("\n") == 1, result.stderr
    assert list(redis_client.scan_iter(match=f"{namespace}:*")) == []


def test_workq_pause_with_redis_unreachable_exits_1_with_one_line(namespace: str) -> None:
    result = workq("pause", "send_email", "--redis-url", "redis://127.0.0.1:1/0", "--namespace", namespace)
    assert result.returncode == 1
    assert result.stderr.startswith("workq: ") and result.stderr.count("\n") == 1, result.stderr
