"""Writes refused while jobs are in hand: the server a pool talks to became a replica (READONLY, as after a failover
seen through a plain URL), or a failed RDB save stopped writes (MISCONF). Redis did not run a refused ack, so the
worker retries it until Redis accepts writes again: the job runs once and a failure keeps its count. (Before, the
ack was abandoned and the orphan sweeper ran the job's original bytes again, its failure forgotten.)"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
import redis

from redis_servers import HOST, RedisServer, free_port
from reliability.harness import leftovers, report, seconds_since
from support import wait_until
from workq import Client, Job, WorkerPool

RESOLVED_WITHIN = 15.0


def refuse_writes_as_a_replica(server: RedisServer) -> Callable[[], None]:
    """REPLICAOF a master that does not exist: writes get READONLY, the data stays. Returns the undo."""
    admin = server.client()
    admin.replicaof(HOST, free_port())
    return lambda: admin.replicaof("NO", "ONE")


def refuse_writes_after_a_failed_save(server: RedisServer) -> Callable[[], None]:
    """A save point and a BGSAVE that cannot rename its file over a non-empty directory: writes get MISCONF until
    a save succeeds. Returns the undo (the directory gone, a save that succeeds)."""
    admin = server.client()
    blocker = server.workdir / "dump.rdb"
    (blocker / "keep").mkdir(parents=True)
    admin.config_set("save", "3600 1")
    admin.bgsave()
    wait_until(lambda: admin.info("persistence")["rdb_last_bgsave_status"] == "err", what="the BGSAVE to fail")

    def undo() -> None:
        shutil.rmtree(blocker)
        wait_until(lambda: admin.info("persistence")["rdb_bgsave_in_progress"] == 0, what="no BGSAVE running")
        admin.bgsave()
        wait_until(lambda: admin.info("persistence")["rdb_last_bgsave_status"] == "ok", what="a BGSAVE to succeed")

    return undo


REFUSALS = {"READONLY": refuse_writes_as_a_replica, "MISCONF": refuse_writes_after_a_failed_save}


class Handlers:
    """`finish` and `fail` jobs that wait for the test's word, counting their runs."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def _wait_for_release(self, job: Job) -> None:
        with self._lock:
            self.runs[job.id] += 1
        self.release.wait(RESOLVED_WITHIN)

    def finish(self, job: Job) -> None:
        self._wait_for_release(job)

    def fail(self, job: Job) -> None:
        self._wait_for_release(job)
        raise RuntimeError("upstream down")


@pytest.fixture
def pool(private_redis: RedisServer, namespace: str) -> Iterator[WorkerPool]:
    started = WorkerPool(namespace, private_redis.url, concurrency=2, heartbeat_interval=0.2, dead_after=2.0)
    yield started
    started.stop(grace=5)
    started.redis.close()


@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_an_ack_refused_while_redis_refuses_writes_is_retried_until_accepted(
    refusal: str,
    private_redis: RedisServer,
    pool: WorkerPool,
    namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    handlers = Handlers()
    pool.job("finish", handlers.finish)
    pool.job("fail", handlers.fail, max_fails=3, backoff=lambda job: 3600)
    finishing, failing = pool.enqueuer.enqueue("finish"), pool.enqueuer.enqueue("fail")
    pool.start()
    wait_until(lambda: len(handlers.runs) == 2, what="both jobs to start")

    caplog.set_level(logging.WARNING, logger="workq")
    undo = REFUSALS[refusal](private_redis)
    refused_at = time.monotonic()
    try:
        handlers.release.set()
        wait_until(lambda: _acks_refused(caplog) == {"finish", "fail"}, what="both acks to meet the refusal")
        with pytest.raises(redis.ResponseError):  # the refusal held while they met it
            private_redis.client().set(f"{namespace}:probe", 1)
    finally:
        undo()
    refused_for = seconds_since(refused_at)

    client = Client(namespace, pool.redis)
    admin = private_redis.client()
    wait_until(
        lambda: not leftovers(admin, namespace) and client.retry_jobs()[1] == 1,
        timeout=RESOLVED_WITHIN,
        what="both acks to go through: nothing queued or in progress, the failure in the retry set",
    )
    resolved_in = seconds_since(refused_at)
    retried = client.retry_jobs()[0]
    report(
        f"acks refused ({refusal})",
        runs_finish=handlers.runs[finishing.id],
        runs_fail=handlers.runs[failing.id],
        refused_s=refused_for,
        resolved_s=resolved_in,
    )
    assert handlers.runs == Counter({finishing.id: 1, failing.id: 1}), "a job ran again after its refused ack"
    assert [(job.id, job.fails) for job in retried] == [(failing.id, 1)]
    assert [(stats.job_name, stats.processed, stats.failed) for stats in client.job_stats()] == [
        ("fail", 0, 1),
        ("finish", 1, 0),
    ]


def _acks_refused(caplog: pytest.LogCaptureFixture) -> set[str]:
    """The job names whose refused ack the dispatch threads have logged, to send it again (before the fix: an
    'unexpected error', and the ack dropped)."""
    names: set[str] = set()
    for record in caplog.records:
        message = record.getMessage()
        if record.threadName.startswith("workq-thread-dispatcher") and message.startswith("could not finish"):
            names.update(name.strip() for name in message.split(" job(s)")[0].split(" ", 4)[4].split(","))
    return names
