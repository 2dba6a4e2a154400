"""A check of workq's async side shared by the topology tests, run against whatever a URL reaches (a Sentinel-managed
master, a TLS server): a pool's `async def` handlers run what an AsyncEnqueuer enqueued, through the async runner's
own fetches, lease extensions and acks. (That AsyncEnqueuer stores what the sync Enqueuer stores is checked by
`integration.test_aio_enqueuer.check_variant_stores_the_same_bytes`.)"""

from __future__ import annotations

import asyncio
from collections import Counter

from support import wait_until
from topologies.conftest import PoolMaker
from workq import Client, Job
from workq.aio import AsyncEnqueuer

ASYNC_JOBS = 60


def check_async_handlers_run_async_enqueues(url: str, namespace: str, make_pool: PoolMaker) -> None:
    """Jobs enqueued by AsyncEnqueuer through `url` (one by one, in bulk, unique) run once each on a pool's
    `async def` handlers through the same URL; their check-ins extend their leases; a failing one is filed dead."""
    runs: Counter[str] = Counter()  # touched on the pool's event loop only, read after drain()
    pool = make_pool(namespace, url, async_concurrency=10)

    @pool.job("convert", timeout=60)  # a time limit: each run holds a lease, which its check-in extends
    async def convert(job: Job) -> None:
        await asyncio.sleep(0.002)  # several runs in flight at once
        job.checkin(f"converted {job.arg_int('n')}")
        runs[job.id] += 1

    @pool.job("doomed", max_fails=1)
    async def doomed(job: Job) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("upstream down")

    async def enqueue() -> tuple[list[Job], Job]:
        async with AsyncEnqueuer(namespace, url) as enqueuer:
            jobs = [await enqueuer.enqueue("convert", {"n": 0})]
            jobs += await enqueuer.enqueue_many("convert", [{"n": n} for n in range(1, ASYNC_JOBS - 1)])
            unique = await enqueuer.enqueue_unique("convert", {"n": ASYNC_JOBS - 1})
            assert unique is not None and await enqueuer.enqueue_unique("convert", {"n": ASYNC_JOBS - 1}) is None
            return [*jobs, unique], await enqueuer.enqueue("doomed")

    jobs, failing = asyncio.run(enqueue())
    pool.start()
    pool.drain(timeout=30)

    assert runs == Counter(job.id for job in jobs)
    client = Client(namespace, url)
    try:
        dead = wait_until(lambda: client.dead_jobs()[0], timeout=15, what="the failed async job in the dead set")
        assert [(entry.id, entry.fails) for entry in dead] == [(failing.id, 1)]
        assert "upstream down" in dead[0].last_err
        assert [(queue.job_name, queue.count) for queue in client.queues()] == [("convert", 0), ("doomed", 0)]
        stats = [(stats.job_name, stats.processed, stats.failed) for stats in client.job_stats()]
        assert stats == [("convert", ASYNC_JOBS, 0), ("doomed", 0, 1)]
    finally:
        client.redis.close()
