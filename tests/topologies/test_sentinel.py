"""A Sentinel failover under load: a `workq worker` and an enqueuer on `redis+sentinel://…/mymaster`, the master
killed (kill -9) while jobs flow; the sentinels promote the replica, and both carry on against it.

Redis replication is asynchronous, so writes the old master acknowledged but had not yet sent to the replica are
gone after the failover: jobs enqueued just before the kill may be lost, a fetch or an ack may be undone (the job
runs again, or stays in its pool's in-progress list until that pool stops). The test asserts what must hold —
the worker resumes and every job enqueued after the kill runs — and reports the figures for the rest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import redis

from redis_servers import free_port
from support import wait_until
from topologies.app import FIRST_RUN_AT, RUNS, TALLY_ENV
from topologies.conftest import PoolMaker, WorkerStarter
from topologies.servers import RedisProcess, SentinelGroup, elapsed_since, report
from workq import Client, ConnectionFailed, Enqueuer

NAMESPACE = "failover"
JOBS = 2000
RATE = 500.0
"""Enqueues per second: 2,000 jobs over about four seconds, plus the outage."""
KILL_AFTER = 700


@dataclass
class Attempt:
    n: int
    started_at: float
    """Epoch seconds when enqueue() was called."""
    finished_at: float = 0.0
    """Epoch seconds when enqueue() returned or raised."""
    acknowledged: bool = False
    """enqueue() returned (False: it raised ConnectionFailed)."""


@dataclass
class Pump:
    """Enqueues `record` jobs numbered by attempt at a steady rate until `total` are acknowledged; an attempt that
    raises is recorded as failed and the next one gets a new number."""

    enqueuer: Enqueuer
    total: int
    attempts: list[Attempt] = field(default_factory=list)
    error: BaseException | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        try:
            next_at = time.monotonic()
            while self.acknowledged_count() < self.total:
                time.sleep(max(0.0, next_at - time.monotonic()))  # pacing, not synchronisation
                next_at = max(next_at + 1 / RATE, time.monotonic())
                attempt = Attempt(len(self.attempts), started_at=time.time())
                try:
                    self.enqueuer.enqueue("record", {"n": attempt.n})
                    attempt.acknowledged = True
                except ConnectionFailed:
                    next_at = time.monotonic() + 0.01
                attempt.finished_at = time.time()
                with self._lock:
                    self.attempts.append(attempt)
        except BaseException as exc:
            self.error = exc

    def acknowledged_count(self) -> int:
        with self._lock:
            return sum(attempt.acknowledged for attempt in self.attempts)

    def acknowledged(self, *, started_after: float = 0.0, started_before: float = float("inf")) -> set[int]:
        with self._lock:
            return {
                attempt.n
                for attempt in self.attempts
                if attempt.acknowledged and started_after <= attempt.started_at < started_before
            }

    def failed(self) -> set[int]:
        with self._lock:
            return {attempt.n for attempt in self.attempts if not attempt.acknowledged}


def test_the_url_finds_the_master_through_password_protected_sentinels(
    sentinel_group: SentinelGroup, make_pool: PoolMaker
) -> None:
    ran: list[str] = []
    pool = make_pool("discovery", sentinel_group.url, concurrency=2)
    pool.job("ping", lambda job: ran.append(job.id))
    job = Enqueuer("discovery", sentinel_group.url).enqueue("ping")
    pool.start()
    pool.drain(timeout=10)
    assert ran == [job.id]
    with sentinel_group.master.client() as master:
        assert master.llen("discovery:jobs:ping") == 0 and master.sismember("discovery:known_jobs", "ping")


def test_unreachable_sentinels_are_named_in_the_error() -> None:
    """No sentinel listens: redis-py retries discovery for about 4 s, then workq raises ConnectionFailed."""
    with pytest.raises(ConnectionFailed, match=r"cannot reach Redis at sentinel service mymaster: No master found"):
        Enqueuer("discovery", f"redis+sentinel://127.0.0.1:{free_port()}/mymaster").enqueue("ping")


def test_a_sentinel_url_takes_the_query_options_redis_urls_take(sentinel_group: SentinelGroup) -> None:
    Enqueuer("discovery", sentinel_group.url + "&socket_timeout=5").enqueue("ping")


def runs(tally: redis.Redis) -> dict[int, int]:
    return {int(n): int(count) for n, count in tally.hgetall(RUNS).items()}


def settles(probe: Callable[[], bool], timeout: float) -> bool:
    """`wait_until` that returns False at its deadline, so a test can report its figures before asserting."""
    try:
        wait_until(probe, timeout=timeout)
    except AssertionError:
        return False
    return True


def test_workers_and_enqueuers_ride_through_a_failover(
    sentinel_group: SentinelGroup, tally_server: RedisProcess, start_worker: WorkerStarter
) -> None:
    tally = tally_server.client()
    worker = start_worker(
        "topologies.app:make_recording_pool",
        "--redis-url",
        sentinel_group.url,
        "--namespace",
        NAMESPACE,
        "--grace",
        "10",
        env={TALLY_ENV: f"redis://127.0.0.1:{tally_server.port}/0"},
    )
    client = Client(NAMESPACE, sentinel_group.url)
    pools = wait_until(client.worker_pool_heartbeats, timeout=20, what="the worker to register")
    pump = Pump(Enqueuer(NAMESPACE, sentinel_group.url), JOBS)
    pumping = threading.Thread(target=pump.run, name="pump")
    pumping.start()
    try:
        wait_until(lambda: pump.acknowledged_count() >= KILL_AFTER, timeout=30, what=f"{KILL_AFTER} enqueues")
        kill_sent = time.monotonic()
        sentinel_group.master.kill()
        master_dead_at = time.time()  # epoch seconds, comparable with the worker's first-run times
        wait_until(sentinel_group.replica_promoted, timeout=30, interval=0.02, what="the replica's promotion")
        failover, promoted_at = elapsed_since(kill_sent), time.time()
    finally:
        pumping.join(120)
    assert pump.error is None, f"the enqueuer died: {pump.error!r}"
    assert not pumping.is_alive()

    # Only an enqueue that started once the old master was gone is sure to have been written to the new one.
    before = pump.acknowledged(started_before=master_dead_at)
    after = pump.acknowledged(started_after=master_dead_at)
    all_ran = settles(lambda: after <= set(runs(tally)), timeout=15)
    queue_emptied = all_ran and settles(lambda: [queue.count for queue in client.queues()] == [0], timeout=10)
    stranded = client.redis.llen(f"{NAMESPACE}:jobs:record:{pools[0].worker_pool_id}:inprogress")
    worker_survived = worker.alive
    exit_status = worker.stop()

    ran = runs(tally)
    first_run_at = {int(n): float(at) for n, at in tally.hgetall(FIRST_RUN_AT).items()}
    resumed = [first_run_at[n] for n in after if n in first_run_at]
    enqueue_resumed_at = min(attempt.finished_at for attempt in pump.attempts if attempt.n in after)
    failed = pump.failed()
    failed_once_promoted = {
        attempt.n for attempt in pump.attempts if attempt.n in failed and attempt.started_at > promoted_at + 1
    }
    report(
        "sentinel failover",
        failover_s=failover,
        enqueue_resumed_s=enqueue_resumed_at - master_dead_at,
        work_resumed_s=min(resumed) - master_dead_at if resumed else "never",
        acked_before_kill=len(before),
        lost_before=len(before - set(ran)),
        duplicated_before=sum(ran[n] - 1 for n in before if n in ran),
        acked_after_kill=len(after),
        lost_after=len(after - set(ran)),
        duplicated_after=sum(ran[n] - 1 for n in after if n in ran),
        failed_enqueues=len(failed),
        failed_1s_after_promotion=len(failed_once_promoted),
        failed_but_ran=len(failed & set(ran)),
        stranded_in_progress=stranded,
    )
    client.redis.close()
    tally.close()
    assert worker_survived and exit_status == 0, worker.log
    assert "Redis unavailable" in worker.log, "the worker never noticed the failover"
    assert not failed_once_promoted, "enqueues kept failing after the replica's promotion"
    assert all_ran, f"{len(after - set(ran))} of {len(after)} jobs enqueued after the kill never ran"
    assert queue_emptied
    assert set(ran) <= before | after | failed
