"""Time limits in worker processes: a hung handler is interrupted at its limit, counted as a failure and retried
after its backoff — never run twice at once; a long job that checks in more often than its limit runs once."""

from __future__ import annotations

import redis

from reliability.app import HANG_TIMEOUT
from reliability.harness import Fleet, leftovers, report, runs_by_job
from support import wait_until
from workq import Client, Enqueuer


def test_a_hung_job_is_interrupted_counted_and_retried_never_two_runs_at_once(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str
) -> None:
    """Before time limits ended runs, the hung run went on while the lease handed the job to another worker."""
    worker = fleet.start(redis_url, concurrency=2)
    worker.pool_id()
    job = Enqueuer(namespace, redis_url).enqueue("hang", {"seconds": 60})  # its first run hangs until released

    wait_until(lambda: runs_by_job(redis_client, namespace)[job.id] == 1, timeout=30, what="the retried run to end")
    wait_until(lambda: not leftovers(redis_client, namespace), timeout=5, what="the namespace to be idle")
    started = runs_by_job(redis_client, namespace, "started")[job.id]
    at_once = int(redis_client.get(f"{namespace}:test:max_running:hang") or 0)
    report("hung-job", enqueued=1, runs=started, at_once=at_once, timeout=HANG_TIMEOUT)
    assert (started, at_once) == (2, 1), "interrupted, then run again once it had ended"
    assert "JobTimeout" in worker.log and "timed out: the run passed its 1 s time limit" in worker.log
    assert redis_client.zcard(f"{namespace}:dead") == 0
    assert worker.alive


def test_a_job_that_checks_in_keeps_its_lease_and_runs_once(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str
) -> None:
    worker = fleet.start(redis_url, concurrency=2)
    worker.pool_id()
    runs_for = 4 * HANG_TIMEOUT
    job = Enqueuer(namespace, redis_url).enqueue("checkin_long", {"seconds": runs_for, "every": HANG_TIMEOUT / 4})
    client = Client(namespace, redis_url)
    observed = wait_until(
        lambda: [seen for seen in client.worker_observations() if seen.job_id == job.id and seen.checkin],
        timeout=10,
        what="the checkin to be observed",
    )
    wait_until(lambda: runs_by_job(redis_client, namespace)[job.id], timeout=runs_for + 10, what="the job to end")
    wait_until(lambda: not leftovers(redis_client, namespace), timeout=5, what="the namespace to be idle")
    started = runs_by_job(redis_client, namespace, "started")[job.id]
    report("checkin", enqueued=1, runs=started, timeout=HANG_TIMEOUT, ran_for=runs_for)
    assert started == 1, "the job ran again although it checked in"
    assert observed[0].checkin.startswith("step ")
    assert worker.alive
