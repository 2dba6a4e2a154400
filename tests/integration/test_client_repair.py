"""Client views and repairs of the scheduled, retry and dead sets, peek and daily stats, on a real Redis."""

from __future__ import annotations

import pytest
import redis

from integration.job_log import JobLog
from integration.pool_factory import PoolFactory
from workq import Client, DeadJob, Enqueuer, Job, NotDeleted, NotRetried
from workq.client import PAGE_SIZE

NOW = 1_800_000_000


@pytest.fixture
def client(namespace: str, redis_client: redis.Redis) -> Client:
    return Client(namespace, redis_client, clock=lambda: NOW)


def bury(redis_client: redis.Redis, namespace: str, name: str, died_at: int, **args: object) -> Job:
    job = Job(name=name, enqueued_at=died_at - 100, args=dict(args), fails=4, last_err="boom", failed_at=died_at)
    redis_client.zadd(f"{namespace}:dead", {job.to_json(): died_at})
    return job


def test_dead_jobs_are_paged_newest_death_first_with_the_total(
    client: Client, redis_client: redis.Redis, namespace: str
) -> None:
    buried = [bury(redis_client, namespace, "email", NOW - n, n=n) for n in range(PAGE_SIZE + 5)]
    first, total = client.dead_jobs()
    second, _ = client.dead_jobs(page=2)
    assert total == PAGE_SIZE + 5 and len(first) == PAGE_SIZE and len(second) == 5
    assert [job.id for job in first + second] == [job.id for job in buried]
    assert isinstance(first[0], DeadJob) and first[0].died_at == NOW and first[0].last_err == "boom"
    assert client.dead_jobs(page=3) == ([], PAGE_SIZE + 5)
    with pytest.raises(ValueError, match="page"):
        client.dead_jobs(page=0)


def test_scheduled_and_retry_jobs_are_paged_soonest_first(client: Client, namespace: str, redis_url: str) -> None:
    enqueuer = Enqueuer(namespace, redis_url, clock=lambda: NOW)
    later = enqueuer.enqueue_in("report", 600)
    sooner = enqueuer.enqueue_in("report", 60)
    jobs, total = client.scheduled_jobs()
    assert total == 2 and [(job.id, job.run_at) for job in jobs] == [(sooner.id, NOW + 60), (later.id, NOW + 600)]
    assert client.retry_jobs() == ([], 0)


def test_retry_dead_job_requeues_it_with_its_failures_cleared(
    client: Client, redis_client: redis.Redis, namespace: str
) -> None:
    job = bury(redis_client, namespace, "email", NOW - 5, to="a@b.c")
    client.retry_dead_job(NOW - 5, job.id)
    assert client.dead_jobs() == ([], 0)
    [queued] = client.peek("email")
    assert (queued.id, queued.args, queued.fails, queued.last_err, queued.enqueued_at) == (job.id, job.args, 0, "", NOW)
    with pytest.raises(NotRetried):
        client.retry_dead_job(NOW - 5, job.id)


def test_a_retried_dead_job_goes_to_the_back_of_its_queue(
    client: Client, redis_client: redis.Redis, namespace: str
) -> None:
    """As gocraft/work's RetryDeadJob: LPUSH, the end workers fetch last (they RPOPLPUSH), behind waiting jobs."""
    waiting = Enqueuer(namespace, redis_client).enqueue_many("email", [{"n": 1}, {"n": 2}])
    died = bury(redis_client, namespace, "email", NOW - 5, n=0)
    client.retry_dead_job(NOW - 5, died.id)
    assert [job.id for job in client.peek("email")] == [waiting[0].id, waiting[1].id, died.id]


def test_retry_dead_jobs_by_name_and_limit_then_all(client: Client, redis_client: redis.Redis, namespace: str) -> None:
    for n in range(5):
        bury(redis_client, namespace, "email", NOW - n, n=n)
    bury(redis_client, namespace, "sms", NOW - 10)
    redis_client.zadd(f"{namespace}:dead", {b"{not a job": NOW - 20})
    assert client.retry_dead_jobs("email", limit=2) == 2
    assert [job.args["n"] for job in client.peek("email")] == [4, 3], "oldest deaths first"
    assert client.retry_all_dead_jobs() == 4
    [garbage], total = client.dead_jobs()
    assert total == 1 and garbage.id.startswith("malformed-"), "bytes that are not a job stay dead"
    with pytest.raises(NotRetried, match="not a valid job"):
        client.retry_dead_job(garbage.died_at, garbage.id)
    client.delete_dead_job(garbage.died_at, garbage.id)
    assert client.dead_jobs() == ([], 0)


def test_deletes_remove_exactly_one_job_or_raise_not_deleted(
    client: Client, redis_client: redis.Redis, namespace: str, redis_url: str
) -> None:
    keep = bury(redis_client, namespace, "email", NOW)
    gone = bury(redis_client, namespace, "email", NOW)
    client.delete_dead_job(NOW, gone.id)
    assert [job.id for job in client.dead_jobs()[0]] == [keep.id]
    with pytest.raises(NotDeleted):
        client.delete_dead_job(NOW, gone.id)
    with pytest.raises(NotDeleted):
        client.delete_retry_job(NOW, keep.id)
    assert client.delete_all_dead_jobs() == 1 and client.dead_jobs() == ([], 0)

    scheduled = Enqueuer(namespace, redis_url, clock=lambda: NOW).enqueue_unique_in("report", 60, {"day": 1})
    assert scheduled is not None
    client.delete_scheduled_job(scheduled.run_at, scheduled.id)
    assert client.scheduled_jobs() == ([], 0)
    assert not redis_client.exists(scheduled.unique_key), "deleting a unique scheduled job releases its lock"


def test_peek_shows_the_next_jobs_without_taking_them(client: Client, namespace: str, redis_url: str) -> None:
    jobs = Enqueuer(namespace, redis_url).enqueue_many("email", [{"n": n} for n in range(5)])
    assert [job.id for job in client.peek("email", count=3)] == [job.id for job in jobs[:3]]
    assert [queue.count for queue in client.queues()] == [5]


def test_job_stats_count_processed_and_failed_today(
    make_pool: PoolFactory, namespace: str, redis_url: str, redis_client: redis.Redis
) -> None:
    log = JobLog()
    pool = make_pool(concurrency=2)
    pool.job("ok", log.record)

    @pool.job("bad", max_fails=1)
    def bad(job: Job) -> None:
        raise ValueError("no")

    enqueuer = Enqueuer(namespace, redis_url)
    enqueuer.enqueue_many("ok", [{}] * 3)
    enqueuer.enqueue_many("bad", [{}] * 2)
    pool.start()
    pool.drain(timeout=10)
    stats = {entry.job_name: (entry.processed, entry.failed) for entry in Client(namespace, redis_client).job_stats()}
    assert stats == {"ok": (3, 0), "bad": (0, 2)}
