"""A Redis stall longer than `dead_after` (issue 10): nobody can beat while Redis sleeps, so when it wakes every
heartbeat looks old. A reaper must not take the live pools for dead then: their jobs would run a second time while
the first run goes on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import redis

from redis_servers import HOST, RedisServer
from reliability.harness import report
from support import wait_until
from workq import Enqueuer, Job, WorkerPool
from workq.heartbeat import Heartbeater
from workq.reaper import Reaper

DEAD_AFTER = 3.0
STALL = 6
"""Seconds of `DEBUG SLEEP`: past dead_after + the heartbeat's whole-second rounding."""
JUDGE_PASSES = 3
"""Reaper passes of the judging pool after the stall before the test looks."""


def test_a_stall_longer_than_dead_after_runs_no_job_twice(
    stallable_redis: RedisServer, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The victim pool runs a job through the stall; the judge must leave that job with the victim.

    Which command Redis serves first when it wakes is a race; the test fixes the order that breaks a naive reaper:
    the victim's heartbeat (once a second) is not in flight during the stall, and its next beat comes only after
    the judge's first reaper pass since the stall."""
    runs: list[str] = []
    victim_running, release = threading.Event(), threading.Event()
    victim = WorkerPool(namespace, stallable_redis.url, concurrency=1, heartbeat_interval=1.0, dead_after=DEAD_AFTER)
    judge = WorkerPool(namespace, stallable_redis.url, concurrency=1, heartbeat_interval=0.1, dead_after=DEAD_AFTER)

    @victim.job("work")
    def hold(job: Job) -> None:
        runs.append("victim")
        victim_running.set()
        release.wait(60)

    @judge.job("work")
    def run_again(job: Job) -> None:
        runs.append("judge")

    passes_after_stall = _count_reaper_passes(monkeypatch, judge)
    stall_ended = float("inf")
    beat_parked, resume_beats = threading.Event(), threading.Event()
    original_beat = Heartbeater.beat

    def beat(self: Heartbeater) -> None:
        if self._pool_id == victim.pool_id and hold_beats.is_set():
            beat_parked.set()
            resume_beats.wait(30)
        original_beat(self)

    hold_beats = threading.Event()
    monkeypatch.setattr(Heartbeater, "beat", beat)
    try:
        victim.start()
        Enqueuer(namespace, stallable_redis.url).enqueue("work")
        assert victim_running.wait(10), "the victim pool did not start the job"
        judge.start()
        hold_beats.set()
        assert beat_parked.wait(10), "the victim's heartbeat did not come round"
        stall_ended = _stall(stallable_redis)
        wait_until(lambda: passes_after_stall(stall_ended) >= 1, timeout=30, what="the judge's first pass")
        resume_beats.set()
        wait_until(
            lambda: passes_after_stall(stall_ended) >= JUDGE_PASSES,
            timeout=30,
            what=f"{JUDGE_PASSES} reaper passes of the judge after the stall",
        )
        wait_until(lambda: _beat_after(stallable_redis, namespace, victim.pool_id, stall_ended), timeout=10)
        taken_during_stall = list(runs)
        release.set()
        victim.drain(timeout=10)
        judge.drain(timeout=10)
    finally:
        resume_beats.set()
        release.set()
        victim.stop(grace=1)
        judge.stop(grace=1)
    report("stall-past-dead-after", stall=STALL, dead_after=DEAD_AFTER, runs=len(runs))
    assert taken_during_stall == ["victim"], "the judge's reaper took the running job from the live victim pool"
    assert runs == ["victim"]


def _count_reaper_passes(monkeypatch: pytest.MonkeyPatch, pool: WorkerPool) -> Callable[[float], int]:
    """Notes when `pool`'s reaper passes end (those that got the reaper lock); returns `passes_after(moment)`."""
    ended: list[float] = []
    original = Reaper._reap_dead_pools

    def reap(self: Reaper) -> int:
        try:
            return original(self)
        finally:
            if self._pool_id == pool.pool_id:
                ended.append(time.monotonic())

    monkeypatch.setattr(Reaper, "_reap_dead_pools", reap)
    return lambda moment: sum(1 for at in ended if at > moment)


def _stall(server: RedisServer) -> float:
    """`DEBUG SLEEP` for STALL seconds; returns (monotonic) when Redis answered again."""
    connection = redis.Connection(host=HOST, port=server.port, socket_timeout=STALL + 10)
    connection.connect()
    try:
        connection.send_command("DEBUG", "SLEEP", STALL)
        connection.read_response()
    finally:
        connection.disconnect()
    return time.monotonic()


def _beat_after(server: RedisServer, namespace: str, pool_id: str, moment: float) -> bool:
    """Whether the pool has beaten since `moment` (monotonic), on Redis's clock."""
    client = server.client()
    beat = client.hget(f"{namespace}:worker_pools:{pool_id}", "heartbeat_at")
    seconds, _ = client.time()
    return beat is not None and int(beat) >= int(seconds) - (time.monotonic() - moment)
