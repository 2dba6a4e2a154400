"""Crash safety in one process on a real Redis: heartbeats, recovery of a dead pool's jobs by a live one, job
time-outs and checkins, and stop(grace) handing back the jobs of handlers that outlive it."""

from __future__ import annotations

import copy
import json
import os
import re
import socket
import threading
import time
from typing import cast

import pytest
import redis

from integration.job_log import JobLog
from integration.namespace_view import NamespaceView
from integration.pool_factory import PoolFactory
from support import SteppedClock, wait_until
from workq import Client, Enqueuer, Job, time_limits
from workq.keys import Keys
from workq.reaper import Reaper
from workq.scripts import Scripts

DEAD_POOL = "deaddeaddeaddeaddeaddead"


def fake_dead_pool(view: NamespaceView, name: str, held: int, worker_id: str = "dead-worker") -> list[bytes]:
    """What a pool killed mid-job leaves: a stale heartbeat, a busy worker and `held` jobs fetched from `name`
    (RPOPLPUSH + lock counts, as fetch does). Returns the held jobs' bytes, oldest first."""
    client, taken = view.client, []
    for _ in range(held):
        taken.append(client.rpoplpush(view.key(f"jobs:{name}"), view.key(f"jobs:{name}:{DEAD_POOL}:inprogress")))
        client.incr(view.key(f"jobs:{name}:lock"))
        client.hincrby(view.key(f"jobs:{name}:lock_info"), DEAD_POOL, 1)
    client.sadd(view.key("worker_pools"), DEAD_POOL)
    client.hset(
        view.key(f"worker_pools:{DEAD_POOL}"),
        mapping={
            "heartbeat_at": int(time.time()) - 3600,
            "started_at": int(time.time()) - 7200,
            "job_names": name,
            "concurrency": 1,
            "worker_ids": worker_id,
            "host": "gone",
            "pid": 1,
        },
    )
    client.hset(view.key(f"worker:{worker_id}"), mapping={"job_name": name, "job_id": "x", "started_at": 1})
    return [cast(bytes, payload) for payload in taken if payload is not None]


# --- heartbeats ----------------------------------------------------------------------------------------------


def test_a_started_pool_shows_its_heartbeat_and_is_gone_after_stop(
    make_pool: PoolFactory, namespace: str, redis_client: redis.Redis, view: NamespaceView
) -> None:
    client = Client(namespace, redis_client)
    pool = make_pool(concurrency=3)
    pool.job("resize", lambda job: None)
    pool.job("email", lambda job: None)

    before = int(time.time())
    pool.start()
    after = int(time.time()) + 1

    [heartbeat] = client.worker_pool_heartbeats()
    assert heartbeat.worker_pool_id == pool.pool_id
    assert heartbeat.job_names == ["email", "resize"]
    assert heartbeat.concurrency == 3
    assert (heartbeat.host, heartbeat.pid) == (socket.gethostname(), os.getpid())
    assert before <= heartbeat.started_at <= heartbeat.heartbeat_at <= after
    assert len(set(heartbeat.worker_ids)) == 3
    assert all(re.fullmatch(r"[0-9a-f]{24}", worker_id) for worker_id in heartbeat.worker_ids)

    pool.stop()

    assert client.worker_pool_heartbeats() == []
    assert view.client.sismember(view.key("worker_pools"), pool.pool_id) == 0
    assert view.client.exists(view.key(f"worker_pools:{pool.pool_id}")) == 0


def test_heartbeat_at_advances_every_heartbeat_interval(
    make_pool: PoolFactory, namespace: str, redis_client: redis.Redis
) -> None:
    clock = SteppedClock(1_700_000_000)
    client = Client(namespace, redis_client)
    pool = make_pool(concurrency=1, heartbeat_interval=0.05, clock=clock)
    pool.job("noop", lambda job: None)
    pool.start()
    assert [beat.heartbeat_at for beat in client.worker_pool_heartbeats()] == [1_700_000_000]

    clock.now += 100
    wait_until(
        lambda: [beat.heartbeat_at for beat in client.worker_pool_heartbeats()] == [1_700_000_100],
        timeout=5,
        what="the next heartbeat",
    )
    assert [beat.started_at for beat in client.worker_pool_heartbeats()] == [1_700_000_000]


# --- dead pools ----------------------------------------------------------------------------------------------


def test_a_live_pool_recovers_and_runs_the_jobs_of_a_dead_pool(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, namespace: str, redis_client: redis.Redis
) -> None:
    jobs = enqueuer.enqueue_many("recover", [{"i": i} for i in range(4)])
    fake_dead_pool(view, "recover", held=3)
    log = JobLog()
    pool = make_pool(concurrency=2, heartbeat_interval=0.1, dead_after=2.0)
    pool.job("recover", log.record)

    pool.start()
    log.wait_for(4, timeout=5)
    pool.drain(timeout=5)

    assert log.runs_per_id() == {job.id: 1 for job in jobs}
    assert view.idle_problems("recover", pool.pool_id, DEAD_POOL) == []
    assert [beat.worker_pool_id for beat in Client(namespace, redis_client).worker_pool_heartbeats()] == [pool.pool_id]
    assert view.client.exists(view.key(f"worker_pools:{DEAD_POOL}"), view.key("worker:dead-worker")) == 0


def test_a_silent_pools_job_runs_elsewhere_and_its_late_failure_changes_nothing(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, release: threading.Event
) -> None:
    """A pool whose heartbeats stopped being fresh (here: its clock is an hour behind) is dead to the others; when
    its handler finally fails, the job is not filed for retry: it already ran on the live pool."""
    stuck = threading.Event()
    log = JobLog()
    silent = make_pool(concurrency=1, clock=lambda: time.time() - 3600, heartbeat_interval=0.1, dead_after=2.0)

    @silent.job("work")
    def hang_then_fail(job: Job) -> None:
        stuck.set()
        release.wait(10)
        raise RuntimeError("finished long after the pool was declared dead")

    live = make_pool(concurrency=1, heartbeat_interval=0.1, dead_after=2.0)
    live.job("work", log.record)

    silent.start()
    job = enqueuer.enqueue("work")
    assert stuck.wait(5)
    live.start()

    assert [ran.id for ran in log.wait_for(1, timeout=5)] == [job.id]
    release.set()
    silent.drain(timeout=5)
    live.drain(timeout=5)

    assert view.retry() == [] and view.dead() == []
    assert view.idle_problems("work", silent.pool_id, live.pool_id) == []
    assert len(log) == 1


def test_reaper_on_real_redis_waits_out_a_crashed_reapers_lock_then_recovers(
    redis_client: redis.Redis, namespace: str, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    jobs = enqueuer.enqueue_many("recover", [{"i": i} for i in range(3)])
    held = fake_dead_pool(view, "recover", held=2)
    view.client.set(view.key("jobs:recover:lock"), 5)  # 3 more held by a live gocraft/work pool
    view.client.hset(view.key("jobs:recover:lock_info"), "livepool", 3)
    view.client.sadd(view.key("worker_pools"), "livepool")
    view.client.hset(view.key("worker_pools:livepool"), "heartbeat_at", int(time.time()))
    keys = Keys(namespace)
    reaper = Reaper(
        redis_client,
        keys,
        Scripts.register(redis_client),
        pool_id="reaperpool",
        dead_after=60,
        lock_for=5,
        clock=time.time,
    )
    redis_client.set(keys.reaper_lock, "crashed-reaper:token", px=300)

    assert reaper.reap() == 0
    assert view.in_progress("recover", DEAD_POOL) == list(reversed(held))

    assert wait_until(reaper.reap, timeout=5, what="the crashed reaper's lock to expire") == 2
    assert list(reversed(view.queued("recover"))) == [job.to_json().encode() for job in jobs]
    assert view.in_progress("recover", DEAD_POOL) == []
    assert view.lock("recover") == 3
    assert view.lock_info("recover") == {b"livepool": b"3"}
    assert view.client.smembers(view.key("worker_pools")) == {b"livepool"}
    assert view.client.exists(keys.reaper_lock) == 0


# --- time-outs -----------------------------------------------------------------------------------------------


def test_a_stalled_runs_expired_lease_counts_a_failure_and_its_late_outcome_changes_nothing(
    make_pool: PoolFactory,
    enqueuer: Enqueuer,
    view: NamespaceView,
    release: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pool too stalled to end its own run in time (here: a lease shorter than the abandon grace, so the lease
    expires while the run still holds its thread) loses the job to the lease keeper: a failed run, retried; the
    stalled run's late outcome must then neither file anything nor finish the run that replaced it."""
    monkeypatch.setattr(time_limits, "ABANDON_AFTER", 30.0)
    monkeypatch.setattr(time_limits, "LEASE_MARGIN", -29.5)  # lease = time limit + 0.5 s
    runs: list[Job] = []
    first_returned, replaced, marker_ran = threading.Event(), threading.Event(), threading.Event()
    second_may_end = threading.Event()
    pool = make_pool(concurrency=2)

    @pool.job("slow", timeout=1, backoff=lambda job: 0)
    def slow(job: Job) -> None:
        runs.append(copy.copy(job))
        if len(runs) == 1:
            try:
                release.wait(10)
            finally:
                first_returned.set()
        replaced.set()
        second_may_end.wait(10)

    pool.job("marker", lambda job: marker_ran.set())
    job = enqueuer.enqueue("slow")
    pool.start()

    assert replaced.wait(10), "the job whose lease expired did not run again"
    assert (runs[1].id, runs[1].fails) == (job.id, 1) and "lease expired" in runs[1].last_err
    [running] = view.in_progress("slow", pool.pool_id)

    release.set()  # the stalled run returns: its late time-out files nothing and leaves the new run alone
    assert first_returned.wait(5)
    enqueuer.enqueue("marker")  # only the first run's thread can take it, once that run is finished
    assert marker_ran.wait(5)
    assert view.retry() == [] and view.dead() == [], "the stalled run's late outcome was filed"
    assert view.in_progress("slow", pool.pool_id) == [running], "the replacing run must stay recoverable"
    assert view.lock("slow") == 1

    second_may_end.set()
    pool.drain(timeout=5)
    assert [ran.id for ran in runs] == [job.id, job.id]
    assert view.retry() == [] and view.dead() == []
    assert view.idle_problems("slow", pool.pool_id) == []
    assert view.client.zcard(view.key("jobs:slow:leases")) == 0


def test_a_job_that_checks_in_within_its_timeout_runs_once_and_shows_its_checkins(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, namespace: str, redis_client: redis.Redis
) -> None:
    client = Client(namespace, redis_client)
    log = JobLog()
    pool = make_pool(concurrency=2)
    working = threading.Event()

    @pool.job("steady", timeout=1)
    def steady(job: Job) -> None:
        log.record(job)
        for step in range(8):  # ~2.4 s of work, checking in well within each 1 s lease
            job.checkin(f"step {step}")
            working.wait(0.3)

    job = enqueuer.enqueue("steady", {"size": 3})
    pool.start()

    [busy] = wait_until(
        lambda: [seen for seen in client.worker_observations() if seen.checkin.startswith("step")],
        timeout=3,
        what="a checkin in the worker observations",
    )
    assert (busy.is_busy, busy.job_name, busy.job_id) == (True, "steady", job.id)
    assert json.loads(busy.args_json) == {"size": 3}
    assert busy.checkin_at >= busy.started_at > 0

    pool.drain(timeout=6)
    assert log.runs_per_id() == {job.id: 1}
    assert view.idle_problems("steady", pool.pool_id) == []
    wait_until(
        lambda: not any(seen.is_busy for seen in client.worker_observations()),
        timeout=3,
        what="the worker observation to be cleared",
    )


# --- stop(grace) ---------------------------------------------------------------------------------------------


class Stubborn:
    """A handler that holds its job until the test sets `release`, remembering the thread it ran on."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        self.started = threading.Event()
        self.threads: list[threading.Thread] = []

    def __call__(self, job: Job) -> None:
        self.threads.append(threading.current_thread())
        self.started.set()
        self.release.wait(10)

    def finish(self, timeout: float = 5) -> None:
        """Let the (abandoned) handler return and wait for its thread."""
        self.release.set()
        self.threads[0].join(timeout)


def test_stop_with_a_grace_hands_back_a_job_that_outlives_it(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, release: threading.Event, namespace: str
) -> None:
    stubborn = Stubborn(release)
    pool = make_pool(concurrency=1)
    pool.job("stubborn", stubborn)
    enqueuer.enqueue("stubborn", {"n": 1})
    [queued_bytes] = view.queued("stubborn")
    pool.start()
    assert stubborn.started.wait(5)

    began = time.monotonic()
    pool.stop(grace=0.5)
    took = time.monotonic() - began

    assert 0.45 <= took < 2.5, f"stop(grace=0.5) took {took:.2f} s"
    assert view.queued("stubborn") == [queued_bytes], "the job goes back with its exact bytes"
    assert view.in_progress("stubborn", pool.pool_id) == []
    assert view.lock("stubborn") == 0 and view.lock_info("stubborn") == {}
    assert Client(namespace, view.client).worker_pool_heartbeats() == []

    stubborn.finish()  # the abandoned handler returns; its ack finds the job gone and changes nothing
    assert not stubborn.threads[0].is_alive()
    assert view.queued("stubborn") == [queued_bytes]
    assert view.lock("stubborn") == 0 and view.lock_info("stubborn") == {}


def test_stop_with_a_grace_lets_a_job_finishing_within_it_complete(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, release: threading.Event, namespace: str
) -> None:
    started = threading.Event()
    log = JobLog()
    pool = make_pool(concurrency=1)

    @pool.job("quick")
    def quick(job: Job) -> None:
        started.set()
        release.wait(10)
        log.record(job)

    job = enqueuer.enqueue("quick")
    pool.start()
    assert started.wait(5)

    stopper = threading.Thread(target=pool.stop, kwargs={"grace": 10})
    began = time.monotonic()
    stopper.start()
    wait_until(lambda: pool.stopping, timeout=5, what="stop() to begin")
    release.set()
    stopper.join(5)

    assert not stopper.is_alive() and time.monotonic() - began < 5, "stop() waited for the grace, not the job"
    assert [ran.id for ran in log.jobs] == [job.id]
    assert view.idle_problems("quick", pool.pool_id) == []
    assert Client(namespace, view.client).worker_pool_heartbeats() == []


def test_stop_with_a_grace_leaves_no_observation_of_the_handed_back_job(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, release: threading.Event, namespace: str
) -> None:
    client = Client(namespace, view.client)
    stubborn = Stubborn(release)
    pool = make_pool(concurrency=1)
    pool.job("stubborn", stubborn)
    enqueuer.enqueue("stubborn")
    pool.start()
    [busy] = wait_until(
        lambda: [seen for seen in client.worker_observations() if seen.is_busy], timeout=5, what="a busy worker"
    )
    pool.stop(grace=0.1)
    stubborn.finish()

    assert view.client.exists(view.key(f"worker:{busy.worker_id}")) == 0


def test_a_unique_job_handed_back_at_stop_stays_unique(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, release: threading.Event
) -> None:
    stubborn = Stubborn(release)
    pool = make_pool(concurrency=1)
    pool.job("sync_user", stubborn)
    assert enqueuer.enqueue_unique("sync_user", {"user": 7}) is not None
    pool.start()
    assert stubborn.started.wait(5)
    pool.stop(grace=0.1)
    stubborn.finish()
    assert len(view.queued("sync_user")) == 1

    assert enqueuer.enqueue_unique("sync_user", {"user": 7}) is None, "the job is pending again: no duplicate"
    assert len(view.queued("sync_user")) == 1


def test_a_unique_by_key_job_handed_back_at_stop_keeps_its_newest_args(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, release: threading.Event
) -> None:
    stubborn = Stubborn(release)
    first = make_pool(concurrency=1)
    first.job("sync_user", stubborn)
    assert enqueuer.enqueue_unique_by_key("sync_user", {"version": 1}, key={"user": 7}) is not None
    assert enqueuer.enqueue_unique_by_key("sync_user", {"version": 2}, key={"user": 7}) is None
    first.start()
    assert stubborn.started.wait(5)
    first.stop(grace=0.1)
    stubborn.finish()

    log = JobLog()
    second = make_pool(concurrency=1)
    second.job("sync_user", log.record)
    second.start()
    second.drain(timeout=5)
    assert [job.args for job in log.jobs] == [{"version": 2}]


def test_a_pool_restarted_after_stop_with_grace_does_not_revive_its_abandoned_worker(
    make_pool: PoolFactory, enqueuer: Enqueuer, release: threading.Event
) -> None:
    stubborn = Stubborn(release)
    pool = make_pool(concurrency=1)
    pool.job("stubborn", stubborn)
    enqueuer.enqueue("stubborn")
    pool.start()
    assert stubborn.started.wait(5)
    pool.stop(grace=0.1)
    pool.start()
    release.set()

    stubborn.threads[0].join(2)
    revived = stubborn.threads[0].is_alive()
    pool.stop()
    stubborn.threads[0].join(5)
    assert not revived, "the abandoned worker thread went back to fetching jobs"
