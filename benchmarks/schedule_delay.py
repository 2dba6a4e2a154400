"""Delay between a scheduled job's due time and its start: `python -m benchmarks.schedule_delay [--jobs 20]`.

Runs a pool (concurrency 4) against $WORKQ_REDIS_URL in a namespace of its own and enqueues jobs with
`enqueue_in(1–2 s)` at random moments; each handler records `time.time() - run_at` (run_at as enqueue_in
returned it).
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import threading
import time

from workq import Enqueuer, Job, WorkerPool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20)
    options = parser.parse_args()
    namespace = f"bench-schedule-{secrets.token_hex(4)}"
    pool = WorkerPool(namespace, concurrency=4)
    delays: list[float] = []
    run_at: dict[str, int] = {}
    all_ran = threading.Event()

    @pool.job("due")
    def due(job: Job) -> None:
        delays.append(time.time() - run_at[job.id])
        if len(delays) == options.jobs:
            all_ran.set()

    enqueuer = Enqueuer(namespace, pool.redis)
    with pool:
        for _ in range(options.jobs):
            time.sleep(random.random() / 2)
            scheduled = enqueuer.enqueue_in("due", 1 + random.random())
            run_at[scheduled.id] = scheduled.run_at
        all_ran.wait(60)
    pool.redis.delete(*pool.redis.keys(f"{namespace}:*"))
    ordered = sorted(delays)
    print(
        f"scheduled jobs: {len(delays)}; delay after due time: min {ordered[0] * 1000:.0f} ms, "
        f"median {statistics.median(ordered) * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms; "
        f"early: {sum(d < 0 for d in delays)}"
    )


if __name__ == "__main__":
    main()
