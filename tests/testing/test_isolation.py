"""Nothing leaks: a harnessed pool and its enqueuers reach no real Redis, and closing gives them back their own
connection, namespace and clock."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
import redis

from testing.conftest import START, UNREACHABLE
from workq import Enqueuer, Job, WorkerPool, WorkqError
from workq.testing import TestHarness


def test_closing_restores_the_pools_and_enqueuers_own_settings(pool: WorkerPool) -> None:
    pool.job("x", lambda job: None)
    enqueuer = Enqueuer(pool.namespace, UNREACHABLE)
    pool_client, pool_enqueuer, enqueuer_client = pool.redis, pool.enqueuer, enqueuer.redis
    with TestHarness(pool, enqueuer, eager=True, start=START) as h:
        assert pool.redis is h.redis and enqueuer.redis is h.redis and pool.enqueuer.redis is h.redis
        assert pool.enqueuer.enqueue("x").enqueued_at == START
    assert pool.redis is pool_client and pool.enqueuer is pool_enqueuer and enqueuer.redis is enqueuer_client
    assert enqueuer.on_enqueued is None and pool.enqueuer.on_enqueued is None
    with pytest.raises(WorkqError, match=r"cannot reach Redis at 127\.0\.0\.1:1"):
        enqueuer.enqueue("x")  # on its own Redis again, with no eager run behind it


def test_a_pool_the_test_started_is_stopped_and_restored_at_close(pool: WorkerPool) -> None:
    done = threading.Event()
    pool.job("x", lambda job: done.set())
    client = pool.redis
    with TestHarness(pool, start=START) as h:
        pool.start()  # threads only because the test asked
        h.enqueuer.enqueue("x")
        assert done.wait(10)
    assert pool.redis is client
    pool.configure(concurrency=2)  # refused on a running pool: proves it was stopped


def test_a_running_pool_or_a_foreign_namespace_is_refused(pool: WorkerPool, fake_redis: redis.Redis) -> None:
    pool.job("x", lambda job: None)
    with pytest.raises(WorkqError, match="cannot feed a pool"):
        TestHarness(pool, Enqueuer("elsewhere", UNREACHABLE))
    pool.configure(redis=fake_redis)
    with pool, pytest.raises(WorkqError, match="running pool"):
        TestHarness(pool).open()


@pytest.mark.integration
def test_cron_ticks_and_jobs_of_a_harnessed_pool_never_reach_the_real_redis(
    redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    pool = WorkerPool(namespace, redis_url)
    ran: list[Job] = []
    pool.job("tick", ran.append)
    pool.periodically_enqueue("*/10 * * * * *", "tick")
    enqueuer = Enqueuer(namespace, redis_url)
    with TestHarness(pool, enqueuer, start=START) as h:
        enqueuer.enqueue("tick")
        h.advance(60)
        assert len(h.drain().processed) == 7
    assert ran and list(redis_client.scan_iter(match=f"{namespace}:*")) == []
    with pool:  # usable again, on its own Redis: its cron ticks land there now
        pass
    assert redis_client.zcard(f"{namespace}:scheduled") > 0


@pytest.mark.parametrize(
    ("blocked", "message"),
    [("fakeredis", "workq.testing needs fakeredis"), ("lupa", "runs workq's Lua scripts, but this fakeredis cannot")],
)
def test_a_missing_fakeredis_or_lua_is_one_clear_error_and_the_plugin_still_loads(blocked: str, message: str) -> None:
    script = f"""
import sys
sys.modules[{blocked!r}] = None
import workq.pytest_plugin  # what pytest loads wherever workq is installed
from workq import WorkerPool
from workq.testing import TestHarness
pool = WorkerPool("ns", {UNREACHABLE!r})
pool.job("x", lambda job: None)
try:
    TestHarness(pool).open()
except ImportError as exc:
    print(exc)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False, env=os.environ
    )
    assert result.returncode == 0, result.stderr
    assert message in result.stdout and "pip install 'workq-redis[testing]'" in result.stdout
