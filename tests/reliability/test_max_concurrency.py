"""max_concurrency=1 across processes: two workers of five threads each never run two `exclusive` jobs at once, and a
worker killed while holding the one slot gives it back through the reaper."""

from __future__ import annotations

import time

import redis

from reliability.harness import DEAD_AFTER, SYNC_AND_ASYNC, Fleet, leftovers, report, runs_by_job, seconds_since, tally
from support import wait_until
from workq import Enqueuer

JOBS = 30


def test_max_concurrency_one_across_two_processes(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str
) -> None:
    workers = [fleet.start(redis_url, concurrency=5) for _ in range(2)]
    for worker in workers:
        worker.pool_id()
    ids = [job.id for job in Enqueuer(namespace, redis_url).enqueue_many("exclusive", [{"seconds": 0.08}] * JOBS)]
    wait_until(lambda: tally(redis_client, namespace, ids).lost == 0, timeout=30, what="every job")
    wait_until(lambda: not leftovers(redis_client, namespace), timeout=5, what="the lock to be released")

    outcome = tally(redis_client, namespace, ids)
    most = int(redis_client.get(f"{namespace}:test:max_running:exclusive") or 0)
    processes = len(set(redis_client.hvals(f"{namespace}:test:started_by")))
    report("max-concurrency", **outcome.figures(), processes=processes, threads=10, max_running=most)
    assert most == 1
    assert outcome.lost == 0 and outcome.duplicated == 0
    assert int(redis_client.get(f"{namespace}:test:running:exclusive") or 0) == 0


HOLD = 5.0
"""How long the first job holds the slot: a running job is what the kill must recover."""


@SYNC_AND_ASYNC
def test_a_killed_worker_gives_its_max_concurrency_slot_back(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str, handler_kind: str
) -> None:
    """The lock counter the dead pool held is taken back by the reaper: the other jobs run, still one at a time."""
    victim = fleet.start(redis_url, concurrency=2)
    victim.pool_id()
    enqueuer = Enqueuer(namespace, redis_url)
    holder = enqueuer.enqueue("exclusive", {"seconds": HOLD})
    running = f"{namespace}:test:running:exclusive"
    wait_until(lambda: int(redis_client.get(running) or 0) == 1, timeout=10, what="the slot holder to count itself")
    others = [job.id for job in enqueuer.enqueue_many("exclusive", [{"seconds": 0.05}] * 10)]
    # Killed before the survivor starts: a loaded machine may take longer than HOLD to start a process, and the
    # holder must still hold the slot when its pool dies.
    victim.kill()
    killed_at = time.monotonic()
    most_before_kill = int(redis_client.get(f"{namespace}:test:max_running:exclusive") or 0)
    assert most_before_kill == 1, "a second job ran beside the holder"
    assert not runs_by_job(redis_client, namespace)[holder.id], "killed while the holder held the slot"
    # The killed run never got to count itself out: forget it, then watch what runs from now on.
    redis_client.decr(running)
    redis_client.set(f"{namespace}:test:max_running:exclusive", 0)
    survivor = fleet.start(redis_url, concurrency=3)
    survivor.pool_id()
    ids = [holder.id, *others]
    wait_until(lambda: tally(redis_client, namespace, ids).lost == 0, timeout=DEAD_AFTER + 15, what="every job")
    recovery = seconds_since(killed_at)
    wait_until(lambda: not leftovers(redis_client, namespace), timeout=5, what="the lock to be released")
    outcome = tally(redis_client, namespace, ids)
    most = int(redis_client.get(f"{namespace}:test:max_running:exclusive") or 0)
    report(
        f"max-concurrency-kill[{handler_kind}]",
        **outcome.figures(),
        max_running_after_kill=most,
        all_done_after=recovery,
    )
    assert most == 1
    assert outcome.lost == 0
