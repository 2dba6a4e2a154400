"""`workq pause NAME` stops every pool fetching NAME (its jobs stay queued) while other names flow; `workq unpause`
resumes it."""

from __future__ import annotations

import subprocess
import sys

import redis

from reliability.harness import SYNC_AND_ASYNC, TESTS_DIR, Fleet, report, runs_by_job, tally, text
from support import wait_until
from workq import Enqueuer

PAUSED_JOBS = 20
OTHER_JOBS = 30
"""Each `other` job a pool fetches tried `work` first half the time (two names of equal priority): were the pause
not enforced, some `work` job would be taken with probability 1 - 2**-30."""


def workq_command(*argv: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "workq", *argv], capture_output=True, text=True, timeout=30, cwd=TESTS_DIR, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@SYNC_AND_ASYNC
def test_pause_stops_every_pool_fetching_a_name_until_unpaused(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str, handler_kind: str
) -> None:
    workers = [fleet.start(redis_url, concurrency=3) for _ in range(2)]
    for worker in workers:
        worker.pool_id()
    connection = ["--redis-url", redis_url, "--namespace", namespace]
    workq_command("pause", "work", *connection)

    enqueuer = Enqueuer(namespace, redis_url)
    paused = [job.id for job in enqueuer.enqueue_many("work", [None] * PAUSED_JOBS)]
    others = [job.id for job in enqueuer.enqueue_many("other", [{"seconds": 0.1}] * OTHER_JOBS)]
    wait_until(lambda: tally(redis_client, namespace, others).lost == 0, timeout=30, what="the other jobs")
    pids_that_ran = {text(pid) for pid in redis_client.hvals(f"{namespace}:test:started_by")}
    ran_while_paused = len(runs_by_job(redis_client, namespace).keys() & set(paused))
    queued_while_paused = int(redis_client.llen(f"{namespace}:jobs:work"))

    workq_command("unpause", "work", *connection)
    wait_until(lambda: tally(redis_client, namespace, paused).lost == 0, timeout=30, what="the unpaused jobs")
    outcome = tally(redis_client, namespace, paused)
    report(
        f"pause[{handler_kind}]",
        **outcome.figures(),
        ran_while_paused=ran_while_paused,
        queued_while_paused=queued_while_paused,
        other_jobs_meanwhile=OTHER_JOBS,
        pools_fetching_meanwhile=len(pids_that_ran),
    )
    assert ran_while_paused == 0
    assert queued_while_paused == PAUSED_JOBS
    assert pids_that_ran == {str(worker.pid) for worker in workers}, "a pool fetched nothing while paused"
    assert outcome.lost == 0 and outcome.duplicated == 0
