"""Cron jobs on a real Redis: every fire time runs once, however many pools schedule it, and never early."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter

from integration.job_log import JobLog
from integration.namespace_view import NamespaceView
from integration.pool_factory import PoolFactory
from support import wait_until
from workq import Job

EVERY_SECOND = "* * * * * *"


def test_two_pools_run_each_fire_time_once_and_never_early(make_pool: PoolFactory, view: NamespaceView) -> None:
    log = JobLog()
    ran_at: dict[str, float] = {}
    ran_at_lock = threading.Lock()
    pools = [make_pool(concurrency=2), make_pool(concurrency=2)]

    def tick(job: Job) -> None:
        with ran_at_lock:
            ran_at[job.id] = time.time()
        log.record(job)

    for pool in pools:
        pool.job("tick", tick)
        pool.periodically_enqueue(EVERY_SECOND, "tick")
        pool.start()
    wait_until(lambda: len({job.id for job in log.jobs}) >= 2, what="two cron ticks to run")
    for pool in pools:
        pool.stop()

    runs = Counter(job.id for job in log.jobs)
    assert set(runs.values()) == {1}, f"a fire time ran more than once: {runs}"
    for job_id in runs:
        match = re.fullmatch(r"periodic:tick:\* \* \* \* \* \*:(\d+)", job_id)
        assert match, job_id
        assert ran_at[job_id] >= int(match.group(1)), "a cron job ran before its fire time"
    pending = [member.fields["id"] for member in view.scheduled()]
    assert len(pending) == len(set(pending)), "the scheduled set holds the same fire time twice"
    assert 200 <= len(pending) <= 241, f"expected about 4 minutes of fire times, got {len(pending)}"
    assert view.client.get(view.key("last_periodic_enqueue")) is not None
