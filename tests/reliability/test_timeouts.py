"""Time limits in worker processes: a hung handler is interrupted at its limit, counted as a failure and retried
after its backoff — never run twice at once; a long job that checks in more often than its limit runs once."""

from __future__ import annotations

import json
import time

import redis

from reliability.app import HANG_LONG_TIMEOUT, HANG_TIMEOUT
from reliability.harness import SYNC_AND_ASYNC, Fleet, leftovers, report, runs_by_job
from support import wait_until
from workq import Client, Enqueuer
from workq.keys import Keys
from workq.time_limits import lease_seconds


@SYNC_AND_ASYNC
def test_a_hung_job_is_interrupted_counted_and_retried_never_two_runs_at_once(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str, handler_kind: str
) -> None:
    """Before time limits ended runs, the hung run went on while the lease handed the job to another worker."""
    worker = fleet.start(redis_url, concurrency=2)
    worker.pool_id()
    job = Enqueuer(namespace, redis_url).enqueue("hang", {"seconds": 60})  # its first run hangs until released

    wait_until(lambda: runs_by_job(redis_client, namespace)[job.id] == 1, timeout=30, what="the retried run to end")
    wait_until(lambda: not leftovers(redis_client, namespace), timeout=5, what="the namespace to be idle")
    started = runs_by_job(redis_client, namespace, "started")[job.id]
    at_once = int(redis_client.get(f"{namespace}:test:max_running:hang") or 0)
    report(f"hung-job[{handler_kind}]", enqueued=1, runs=started, at_once=at_once, timeout=HANG_TIMEOUT)
    assert (started, at_once) == (2, 1), "interrupted, then run again once it had ended"
    assert "JobTimeout" in worker.log and "timed out: the run passed its 1 s time limit" in worker.log
    assert redis_client.zcard(f"{namespace}:dead") == 0
    assert worker.alive


@SYNC_AND_ASYNC
def test_a_job_that_checks_in_keeps_its_lease_and_runs_once(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str, handler_kind: str
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
    report(f"checkin[{handler_kind}]", enqueued=1, runs=started, timeout=HANG_TIMEOUT, ran_for=runs_for)
    assert started == 1, "the job ran again although it checked in"
    assert observed[0].checkin.startswith("step ")
    assert worker.alive


def test_a_killed_pools_timed_job_comes_back_through_its_lease_as_a_failed_run(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str
) -> None:
    """kill -9 mid-run, with dead_after far away: the lease (limit + abandon grace + margin) recovers the job, and
    that counts as a failed run: retried after its backoff, run once more."""
    doomed = fleet.start(redis_url, concurrency=1, dead_after=120)
    doomed_pool = doomed.pool_id()
    job = Enqueuer(namespace, redis_url).enqueue("hang_long", {"seconds": 60})
    wait_until(lambda: runs_by_job(redis_client, namespace, "started")[job.id] == 1, timeout=20, what="the run")
    doomed.kill()
    killed_at = time.monotonic()
    # Killed mid-run, before hang_long's own time limit ended it (the survivor starts only now: a slow start must
    # not leave the doomed pool time to fail and retry the run itself), so only the lease can bring the job back.
    in_progress = redis_client.lrange(Keys(namespace).in_progress("hang_long", doomed_pool), 0, -1)
    assert [json.loads(raw)["id"] for raw in in_progress] == [job.id], "killed during the job's first run"
    survivor = fleet.start(redis_url, concurrency=1, dead_after=120)
    survivor.pool_id()

    wait_until(lambda: runs_by_job(redis_client, namespace)[job.id] == 1, timeout=40, what="the job to run again")
    recovered_after = time.monotonic() - killed_at
    report("lease-recovery", lease=lease_seconds(HANG_LONG_TIMEOUT), recovered_after=recovered_after)
    assert recovered_after < 60, "recovered by its lease, long before the reaper's dead_after"
    assert "whose lease expired" in survivor.log and "counted as failed runs" in survivor.log
    assert runs_by_job(redis_client, namespace, "started")[job.id] == 2
    assert redis_client.zcard(f"{namespace}:dead") == 0


@SYNC_AND_ASYNC
def test_a_job_running_in_another_process_is_cancelled_promptly(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str, handler_kind: str
) -> None:
    """The Client's contract for a running job: SET cancel:<id> with an expiry, PUBLISH the id."""
    worker = fleet.start(redis_url, concurrency=2)
    worker.pool_id()
    job = Enqueuer(namespace, redis_url).enqueue("hold", {"seconds": 60})
    wait_until(lambda: runs_by_job(redis_client, namespace, "started")[job.id] == 1, timeout=20, what="the run")
    keys = Keys(namespace)
    requested_at = time.monotonic()
    redis_client.set(keys.cancel_request(job.id), 1, ex=86400)
    redis_client.publish(keys.cancel_channel, job.id)
    [(dead, _)] = wait_until(
        lambda: redis_client.zrange(f"{namespace}:dead", 0, -1, withscores=True), timeout=10, what="the cancel"
    )
    filed_after = time.monotonic() - requested_at
    report(f"cancel-across-processes[{handler_kind}]", request_to_dead=filed_after)
    assert json.loads(dead)["err"].startswith("cancelled")
    assert redis_client.zcard(f"{namespace}:retry") == 0 and not redis_client.exists(keys.cancel_request(job.id))
    assert runs_by_job(redis_client, namespace)[job.id] == 0, "the run never finished its work"
    assert "cancelled while running" in worker.log
