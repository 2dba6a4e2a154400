"""SIGTERM: a job that ends within the grace period finishes once and the worker exits 0; one that outlasts it goes
back on its queue, the worker still exits 0 promptly, and another worker finishes the job. A second SIGTERM exits
at once and leaves the job to the reaper."""

from __future__ import annotations

import time

import pytest
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
)
from support import wait_until
from workq import Client, Enqueuer


def live_pool_ids(namespace: str, redis_url: str) -> set[str]:
    return {beat.worker_pool_id for beat in Client(namespace, redis_url).worker_pool_heartbeats()}


def test_sigterm_lets_a_running_job_finish_within_the_grace_period(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str
) -> None:
    worker = fleet.start(redis_url, concurrency=2, grace=10)
    pool_id = worker.pool_id()
    enqueuer = Enqueuer(namespace, redis_url)
    job = enqueuer.enqueue("hold", {"seconds": 1.0})  # runs 1 s unless released
    wait_until(lambda: runs_by_job(redis_client, namespace, "started")[job.id], timeout=10, what="the job to start")

    worker.terminate()
    signalled_at = time.monotonic()
    wait_until(lambda: "received SIGTERM" in worker.log, timeout=10, what="the signal to be handled")
    later = enqueuer.enqueue("work")
    exit_code = worker.process.wait(15)
    exited_after = seconds_since(signalled_at)

    runs = runs_by_job(redis_client, namespace)
    report("sigterm-within-grace", enqueued=1, completed=runs[job.id], exit_code=exit_code, exited_after=exited_after)
    assert exit_code == 0, worker.log
    assert runs[job.id] == 1
    assert runs_by_job(redis_client, namespace, "started")[job.id] == 1
    assert later.id not in runs, "a job was fetched after SIGTERM"
    assert redis_client.lrange(f"{namespace}:jobs:work", 0, -1) == [later.to_json().encode()]
    assert redis_client.llen(f"{namespace}:jobs:hold") == 0
    assert not redis_client.exists(f"{namespace}:jobs:hold:{pool_id}:inprogress")
    assert pool_id not in live_pool_ids(namespace, redis_url), "the stopped pool is still registered"


@SYNC_AND_ASYNC
def test_sigterm_hands_back_a_job_that_outlasts_the_grace_period(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str, handler_kind: str
) -> None:
    grace = 1.0
    first = fleet.start(redis_url, concurrency=2, grace=grace)
    first_pool = first.pool_id()
    job = Enqueuer(namespace, redis_url).enqueue("hold", {"seconds": 60})  # its first run holds for a minute
    wait_until(lambda: runs_by_job(redis_client, namespace, "started")[job.id], timeout=10, what="the job to start")

    first.terminate()
    signalled_at = time.monotonic()
    exit_code = first.process.wait(grace + 10)
    exited_after = seconds_since(signalled_at)
    assert exit_code == 0, first.log
    assert exited_after < grace + 3, "the worker did not exit promptly after its grace period"
    queued = redis_client.lrange(f"{namespace}:jobs:hold", 0, -1)
    assert len(queued) == 1 and job.id.encode() in queued[0], "the job is not back on its queue"
    assert not redis_client.exists(f"{namespace}:jobs:hold:{first_pool}:inprogress")
    assert first_pool not in live_pool_ids(namespace, redis_url)
    assert runs_by_job(redis_client, namespace)[job.id] == 0, "the held run finished although it was cut short"

    second = fleet.start(redis_url, concurrency=2)
    second.pool_id()
    wait_until(lambda: runs_by_job(redis_client, namespace)[job.id], timeout=10, what="the second worker to run it")
    wait_until(lambda: not leftovers(redis_client, namespace), timeout=5, what="the namespace to be idle")
    runs = runs_by_job(redis_client, namespace)
    started = runs_by_job(redis_client, namespace, "started")[job.id]
    report(
        f"sigterm-beyond-grace[{handler_kind}]",
        enqueued=1,
        completed=runs[job.id],
        started=started,
        grace=grace,
        exit_code=exit_code,
        exited_after=exited_after,
    )
    assert runs[job.id] == 1 and started == 2
    assert "still running after the 1.0 s grace period" in first.log
    assert second.alive


@SYNC_AND_ASYNC
def test_a_second_sigterm_exits_at_once_and_the_job_is_recovered_by_another_worker(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str, handler_kind: str
) -> None:
    first = fleet.start(redis_url, concurrency=2, grace=30)
    first_pool = first.pool_id()
    job = Enqueuer(namespace, redis_url).enqueue("hold", {"seconds": 60})
    wait_until(lambda: runs_by_job(redis_client, namespace, "started")[job.id], timeout=10, what="the job to start")
    first.terminate()
    first.wait_for_log("received SIGTERM")
    first.terminate()
    signalled_at = time.monotonic()
    exit_code = first.process.wait(10)
    exited_after = seconds_since(signalled_at)
    assert exit_code == 1, first.log
    assert exited_after < 2, "the second SIGTERM did not exit at once"
    assert redis_client.llen(f"{namespace}:jobs:hold:{first_pool}:inprogress") == 1, "the job is not left for recovery"

    second = fleet.start(redis_url, concurrency=2)
    second.pool_id()  # started: the wait below is the recovery's, not an interpreter's start on a loaded machine
    wait_until(lambda: runs_by_job(redis_client, namespace)[job.id], timeout=DEAD_AFTER + 15, what="the recovery")
    recovery = seconds_since(signalled_at)
    wait_until(lambda: not leftovers(redis_client, namespace), timeout=5, what="the namespace to be idle")
    report(
        f"second-sigterm[{handler_kind}]",
        enqueued=1,
        completed=1,
        exit_code=exit_code,
        exited_after=exited_after,
        recovery=recovery,
    )
    assert runs_by_job(redis_client, namespace)[job.id] == 1
    assert f"reaper: pool {first_pool} is dead" in second.log


@pytest.mark.parametrize("handler_kind", ["async"])
def test_sigterm_hands_back_an_async_run_past_the_grace_and_the_job_fetched_ahead_unstarted(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str, handler_kind: str
) -> None:
    """One async slot: a run holds it past the grace period while the next job waits on the loop, fetched ahead.
    SIGTERM puts both back on their queues, the waiting one never started; another worker runs each once."""
    first = fleet.start(redis_url, concurrency=1, grace=1.0)
    first_pool = first.pool_id()
    enqueuer = Enqueuer(namespace, redis_url)
    held = enqueuer.enqueue("hold", {"seconds": 60})  # its first run holds for a minute
    wait_until(lambda: runs_by_job(redis_client, namespace, "started")[held.id], timeout=10, what="the run")
    waiting = enqueuer.enqueue("work")  # only now: a pool fetches its job names in a random order
    wait_until(
        lambda: in_progress_ids(redis_client, namespace, "work", first_pool) == [waiting.id],
        timeout=10,
        what="the next job fetched ahead",
    )

    first.terminate()
    exit_code = first.process.wait(15)
    assert exit_code == 0, first.log
    for name, job in (("hold", held), ("work", waiting)):
        queued = redis_client.lrange(f"{namespace}:jobs:{name}", 0, -1)
        assert len(queued) == 1 and job.id.encode() in queued[0], f"{name} is not back on its queue"
    assert runs_by_job(redis_client, namespace, "started")[waiting.id] == 0, "the job fetched ahead started"

    second = fleet.start(redis_url, concurrency=1)
    second.pool_id()
    wait_until(lambda: tally(redis_client, namespace, [held.id, waiting.id]).lost == 0, timeout=15, what="both jobs")
    wait_until(lambda: not leftovers(redis_client, namespace), timeout=5, what="the namespace to be idle")
    started = runs_by_job(redis_client, namespace, "started")
    outcome = tally(redis_client, namespace, [held.id, waiting.id])
    report("sigterm-async-fetched-ahead", **outcome.figures(), held_started=started[held.id])
    assert outcome.duplicated == 0 and (started[held.id], started[waiting.id]) == (2, 1)
