"""kill -9 of a worker with jobs in flight: a live pool's reaper hands them back to their queue, they run again,
and no job is lost."""

from __future__ import annotations

import random
import time

import redis

from reliability.harness import (
    DEAD_AFTER,
    SYNC_AND_ASYNC,
    Fleet,
    in_progress_ids,
    leftovers,
    report,
    runs_by_job,
    seconds_since,
    tally,
    wait_for_completed,
)
from support import wait_until
from workq import Client, Enqueuer
from workq.keys import Keys
from workq.reaper import Reaper
from workq.scripts import Scripts

JOBS = 40


@SYNC_AND_ASYNC
def test_jobs_in_flight_on_a_killed_worker_are_recovered_by_another(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str, handler_kind: str
) -> None:
    rng = random.Random(4)
    first = fleet.start(redis_url, concurrency=5)
    first_pool = first.pool_id()
    client = Client(namespace, redis_url)
    [first_workers] = [beat.worker_ids for beat in client.worker_pool_heartbeats() if beat.worker_pool_id == first_pool]
    jobs = Enqueuer(namespace, redis_url).enqueue_many(
        "work", [{"seconds": round(rng.uniform(0.2, 0.5), 2)} for _ in range(JOBS)]
    )
    ids = [job.id for job in jobs]
    wait_for_completed(redis_client, namespace, 10)

    first.kill()
    killed_at = time.monotonic()
    stranded = in_progress_ids(redis_client, namespace, "work", first_pool)
    runs_at_kill = runs_by_job(redis_client, namespace)
    assert stranded, "the killed worker held no job: nothing to recover"

    second = fleet.start(redis_url, concurrency=5)
    second.pool_id()  # started: the wait below is the recovery's, not an interpreter's start on a loaded machine

    def stranded_jobs_ran_again() -> bool:
        runs = runs_by_job(redis_client, namespace)
        return all(runs[job_id] > runs_at_kill[job_id] for job_id in stranded)

    wait_until(stranded_jobs_ran_again, timeout=DEAD_AFTER + 20, interval=0.01, what="the stranded jobs to run")
    recovery = seconds_since(killed_at)
    wait_until(lambda: tally(redis_client, namespace, ids).lost == 0, timeout=30, what="every job to complete")
    wait_until(lambda: not leftovers(redis_client, namespace), timeout=10, what="queues and counters to settle")

    outcome = tally(redis_client, namespace, ids)
    report(f"kill-9[{handler_kind}]", **outcome.figures(), stranded=len(stranded), recovery=recovery)
    assert outcome.lost == 0 and outcome.unexpected == 0
    assert outcome.completed == JOBS
    assert second.alive
    live_pools = {beat.worker_pool_id for beat in client.worker_pool_heartbeats()}
    assert first_pool not in live_pools, "the dead pool is still registered"
    assert not redis_client.exists(*(f"{namespace}:worker:{worker_id}" for worker_id in first_workers)), (
        "the dead pool's worker observations were left behind"
    )
    assert redis_client.zcard(f"{namespace}:dead") == 0
    assert f"reaper: pool {first_pool} is dead" in second.log


LIVE_DEAD_AFTER = 1.0
"""A dead_after WorkerPool accepts with a 0.2 s heartbeat (it must only exceed twice the interval)."""


def test_a_pool_that_beat_a_moment_ago_is_never_taken_for_dead(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str
) -> None:
    worker = fleet.start(redis_url, concurrency=1, dead_after=LIVE_DEAD_AFTER)
    pool_id = worker.pool_id()
    job = Enqueuer(namespace, redis_url).enqueue("hold", {"seconds": 30})
    wait_until(lambda: runs_by_job(redis_client, namespace, "started")[job.id], timeout=10, what="the job to start")
    # What any other pool's reaper (same code, same dead_after) decides, run here at a chosen moment.
    other_pools_reaper = Reaper(
        redis_client,
        Keys(namespace),
        Scripts.register(redis_client),
        pool_id="another-pool",
        dead_after=LIVE_DEAD_AFTER,
        lock_for=0.25,
        clock=time.time,
    )

    def just_past_a_second_boundary_before_the_next_beat() -> bool:
        """The pool beats every 0.2 s, so its last beat is at most ~0.22 s old; it was stamped last second."""
        now = time.time()
        heartbeat_at = redis_client.hget(f"{namespace}:worker_pools:{pool_id}", "heartbeat_at")
        return now % 1 < 0.05 and heartbeat_at is not None and int(heartbeat_at) == int(now) - 1

    moved = 0
    for _ in range(3):  # a pass finding the worker's own reaper holding the reaper lock judges nothing: try again
        wait_until(just_past_a_second_boundary_before_the_next_beat, timeout=10, interval=0.002, what="the moment")
        moved += other_pools_reaper.reap()
        wait_until(lambda: time.time() % 1 > 0.1, timeout=2, what="the moment to pass")
    still_registered = redis_client.sismember(f"{namespace}:worker_pools", pool_id)
    report("live-pool-judged", dead_after=LIVE_DEAD_AFTER, jobs_taken_from_live_pool=moved)
    assert moved == 0 and still_registered and worker.alive
