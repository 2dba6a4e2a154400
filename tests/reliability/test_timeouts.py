"""Job time-outs (beanstalkd's TTR): a hung handler's job runs again elsewhere while it hangs; a long job that checks
in more often than its time-out keeps its lease and runs once."""

from __future__ import annotations

import time

import redis

from reliability.app import HANG_TIMEOUT
from reliability.harness import Fleet, leftovers, report, runs_by_job, seconds_since
from support import wait_until
from workq import Client, Enqueuer

LEASE_CHECK = 1.1
"""How often a pool looks for expired leases (workq.running_pool.LEASE_CHECK_INTERVAL, 1 s ± 10 %)."""
IDLE_POLL = 1.0
"""How often an idle worker looks at the queues unprompted (workq.worker.IDLE_POLL); a lease expiry wakes nobody."""


def test_a_hung_job_is_delivered_again_while_the_first_run_still_hangs(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str
) -> None:
    worker = fleet.start(redis_url, concurrency=2)
    worker.pool_id()
    job = Enqueuer(namespace, redis_url).enqueue("hang", {"seconds": 60})  # its first run hangs until released
    wait_until(lambda: runs_by_job(redis_client, namespace, "started")[job.id] == 1, timeout=10, what="first run")
    first_started = time.monotonic()

    wait_until(
        lambda: runs_by_job(redis_client, namespace, "started")[job.id] == 2,
        timeout=HANG_TIMEOUT + LEASE_CHECK + IDLE_POLL + 5,
        what="the job to be delivered again",
    )
    redelivered_after = seconds_since(first_started)
    wait_until(lambda: runs_by_job(redis_client, namespace)[job.id] == 1, timeout=10, what="the second run to end")
    assert redis_client.hget(f"{namespace}:test:first_run", job.id), "the first run is not the one hanging"

    redis_client.set(f"{namespace}:test:release", 1)
    wait_until(lambda: runs_by_job(redis_client, namespace)[job.id] == 2, timeout=10, what="the hung run to end")
    # The late run's ack finds its job gone and changes nothing: the queue, leases and counters are idle.
    wait_until(lambda: not leftovers(redis_client, namespace), timeout=5, what="the namespace to be idle")
    started = runs_by_job(redis_client, namespace, "started")[job.id]
    report("hung-job", enqueued=1, runs=started, timeout=HANG_TIMEOUT, redelivered_after=redelivered_after)
    assert started == 2
    assert HANG_TIMEOUT - 0.1 <= redelivered_after <= HANG_TIMEOUT + LEASE_CHECK + IDLE_POLL + 1
    assert redis_client.zcard(f"{namespace}:dead") == 0
    assert worker.alive


def test_a_job_that_checks_in_keeps_its_lease_and_runs_once(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str
) -> None:
    worker = fleet.start(redis_url, concurrency=2)
    worker.pool_id()
    runs_for = 3 * HANG_TIMEOUT + LEASE_CHECK
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
