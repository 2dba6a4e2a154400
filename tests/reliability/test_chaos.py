"""Chaos: three workers killed with -9 and restarted at random while 5,000 jobs flow; every job completes."""

from __future__ import annotations

import os
import random
import time

import redis

from reliability.harness import (
    DEAD_AFTER,
    Fleet,
    WorkerProcess,
    in_progress_ids,
    leftovers,
    report,
    runs_by_job,
    tally,
    wait_for_completed,
)
from support import wait_for_count, wait_until
from workq import Client, Enqueuer

ROUNDS = int(os.environ.get("WORKQ_CHAOS_ROUNDS", "20"))
"""Kill/restart rounds; set WORKQ_CHAOS_ROUNDS for a longer soak (jobs grow with the rounds)."""
JOBS = 250 * ROUNDS
SLOTS = 3
CONCURRENCY = 4


def test_random_kill_9_and_restarts_lose_no_job(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str
) -> None:
    seed = int(os.environ.get("WORKQ_CHAOS_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    print(f"chaos seed {seed} (rerun with WORKQ_CHAOS_SEED={seed})")
    started = time.monotonic()
    enqueuer = Enqueuer(namespace, redis_url)
    client = Client(namespace, redis_url)
    slots: list[WorkerProcess | None] = [fleet.start(redis_url, concurrency=CONCURRENCY) for _ in range(SLOTS)]
    ids: list[str] = []
    kills = restarts = stranded = kills_before_registering = 0

    def completed() -> int:
        return len(runs_by_job(redis_client, namespace))

    for _ in range(ROUNDS):
        batch = enqueuer.enqueue_many("work", [{"seconds": 0.02} for _ in range(JOBS // ROUNDS)])
        ids.extend(job.id for job in batch)
        # Let a random share of the new jobs through, so that every kill lands among jobs in flight.
        wait_for_completed(redis_client, namespace, completed() + rng.randint(20, len(batch) // 2))
        alive = [index for index, worker in enumerate(slots) if worker is not None]
        victim = rng.choice(alive)
        worker = slots[victim]
        assert worker is not None
        pool_ids = {beat.pid: beat.worker_pool_id for beat in client.worker_pool_heartbeats()}
        worker.kill()
        kills += 1
        if worker.pid in pool_ids:
            stranded += len(in_progress_ids(redis_client, namespace, "work", pool_ids[worker.pid]))
        else:
            kills_before_registering += 1
        slots[victim] = None
        # Restart each empty slot (the victim's too) with probability 2/3; never leave the fleet without a worker.
        for index in range(SLOTS):
            if slots[index] is None and (rng.random() < 2 / 3 or all(slot is None for slot in slots)):
                slots[index] = fleet.start(redis_url, concurrency=CONCURRENCY)
                restarts += 1
    for index in range(SLOTS):
        if slots[index] is None:
            slots[index] = fleet.start(redis_url, concurrency=CONCURRENCY)
            restarts += 1

    # Progress, not speed: the last jobs wait for the reaper (a dead pool's heartbeat DEAD_AFTER old) and restarts.
    wait_for_count(completed, JOBS, stalled_after=DEAD_AFTER + 20, what="every job to complete")
    wait_until(lambda: not leftovers(redis_client, namespace), timeout=DEAD_AFTER + 10, what="recovery to settle")
    outcome = tally(redis_client, namespace, ids)
    report(
        "chaos",
        **outcome.figures(),
        kills=kills,
        stranded=stranded,
        kills_before_registering=kills_before_registering,
        restarts=restarts,
        seed=seed,
        elapsed=time.monotonic() - started,
    )
    assert set(runs_by_job(redis_client, namespace)) == set(ids)
    assert outcome.lost == 0 and outcome.unexpected == 0
    assert redis_client.zcard(f"{namespace}:dead") == 0, "a job failed"
    assert all(worker is not None and worker.alive for worker in slots)
