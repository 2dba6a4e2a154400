"""Faults that used to lose a job or run it twice, each reproduced on a real Redis (issue 10): keys of the wrong
type where a job was going, pools with different liveness settings, unique locks released by a job they did not
belong to, identical payloads in flight at once, and garbage members in the sets the reaper reads."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import redis

from integration.job_log import JobLog
from integration.namespace_view import NamespaceView
from integration.pool_factory import PoolFactory
from support import fetch_args, one_fetched, wait_until
from workq import Client, Enqueuer, Job, NotRetried, WorkerPool
from workq.handler import JobOptions
from workq.keys import Keys
from workq.reaper import Reaper
from workq.registration import Registration
from workq.requeuer import Requeuer
from workq.scripts import Scripts

DEAD_POOL = "deaddeaddeaddeaddeaddead"


def make_reaper(client: redis.Redis, keys: Keys) -> Reaper:
    return Reaper(client, keys, Scripts.register(client), pool_id="reaper", dead_after=60, lock_for=5, clock=time.time)


def file_dead(view: NamespaceView, raw: str, died_at: int = 1_700_000_000) -> None:
    view.client.zadd(view.key("dead"), {raw: died_at})


# --- 1. a destination of the wrong type never destroys a job --------------------------------------------------


def test_a_dead_job_whose_name_would_make_another_key_is_not_retried_and_stays_dead(
    namespace: str, redis_client: redis.Redis, view: NamespaceView
) -> None:
    """A dead job named `x:lock` would be pushed onto the lock counter `jobs:x:lock`, which is not a queue."""
    view.client.set(view.key("jobs:x:lock"), 3)
    file_dead(view, '{"name":"x:lock","id":"evil","t":1,"args":{}}')
    client = Client(namespace, redis_client)

    with pytest.raises(NotRetried, match="cannot go back to a queue"):
        client.retry_dead_job(1_700_000_000, "evil")
    assert client.retry_dead_jobs() == 0

    assert [filed.fields["id"] for filed in view.dead()] == ["evil"]
    assert view.client.get(view.key("jobs:x:lock")) == b"3"


def test_a_due_job_whose_queue_has_the_wrong_type_waits_in_its_set_and_moves_once_repaired(
    namespace: str, redis_client: redis.Redis, view: NamespaceView, caplog: pytest.LogCaptureFixture
) -> None:
    keys = Keys(namespace)
    requeuer = Requeuer(redis_client, keys, Scripts.register(redis_client), time.time)
    job = Job(name="report", enqueued_at=1, fails=1)
    view.client.zadd(keys.retry, {job.to_json(): 1})
    view.client.hset(keys.queue("report"), "garbage", 1)

    with caplog.at_level(logging.ERROR, logger="workq"):
        assert requeuer.requeue_due() == 0
        assert requeuer.requeue_due() == 0
    assert [filed.fields["id"] for filed in view.retry()] == [job.id], "still there, not destroyed"
    complaints = [record for record in caplog.records if "WRONGTYPE" in record.getMessage()]
    assert len(complaints) == 1, "logged once a minute, not once per pass"

    view.client.delete(keys.queue("report"))
    assert requeuer.requeue_due() == 1
    assert [Job.from_json(raw).id for raw in view.queued("report")] == [job.id]


def test_a_dead_pools_jobs_stay_in_progress_while_their_queue_has_the_wrong_type(
    namespace: str, redis_client: redis.Redis, view: NamespaceView
) -> None:
    keys = Keys(namespace)
    view.client.sadd(keys.known_jobs, "report")
    view.client.lpush(keys.in_progress("report", DEAD_POOL), b"job-1")
    view.client.hset(keys.lock_info("report"), DEAD_POOL, 1)
    view.client.set(keys.queue("report"), "garbage")
    reaper = make_reaper(redis_client, keys)

    assert reaper.reap() == 0
    assert view.in_progress("report", DEAD_POOL) == [b"job-1"]

    view.client.delete(keys.queue("report"))
    assert reaper.reap() == 1
    assert view.queued("report") == [b"job-1"]


def fetch_keys(keys: Keys, *names: str) -> list[str]:
    """fetch.lua's seven keys per job name, for the pool `DEAD_POOL` (alive or not, fetch does not care)."""
    return [key for name in names for key in _registration(keys, name).fetch_keys(keys)]


def _registration(keys: Keys, name: str) -> Registration:
    return Registration.build(keys, DEAD_POOL, name, lambda job: None, JobOptions())


def fetch(redis_client: redis.Redis, keys: Keys, *names: str) -> object:
    """One slot: the job taken as [bytes, group, leased], None, or [b"", 0, key] naming a key of the wrong type."""
    args = fetch_args(DEAD_POOL, "", "run1", [0] * len(names))
    return one_fetched(Scripts.register(redis_client).fetch(keys=fetch_keys(keys, *names), args=args))


@pytest.mark.parametrize("broken", ["queue", "in_progress"])
def test_fetch_skips_a_name_whose_list_has_the_wrong_type_moves_nothing_and_names_the_key(
    redis_client: redis.Redis, namespace: str, broken: str
) -> None:
    """fetch.lua checks no type before it moves a job: RPOPLPUSH's own WRONGTYPE check must keep the job put."""
    keys = Keys(namespace)
    wrong = keys.queue("bad") if broken == "queue" else keys.in_progress("bad", DEAD_POOL)
    if broken == "in_progress":
        redis_client.lpush(keys.queue("bad"), b"stays-queued")
    redis_client.hset(wrong, "garbage", 1)
    redis_client.lpush(keys.queue("good"), b"job-good")

    assert fetch(redis_client, keys, "bad") == [b"", 0, wrong.encode()]
    assert fetch(redis_client, keys, "bad", "good") == [b"job-good", 2, b""]
    if broken == "in_progress":
        assert redis_client.lrange(keys.queue("bad"), 0, -1) == [b"stays-queued"]
    assert redis_client.get(keys.lock("bad")) is None, "nothing counted for the skipped name"


@pytest.mark.parametrize(
    "garbage",
    ["lock-text", "lock-float", "lock-hash", "lock-info-string", "own-field-text", "own-field-float"],
)
def test_fetch_resets_a_counter_that_is_not_a_number_and_still_hands_out_the_job(
    redis_client: redis.Redis, namespace: str, garbage: str
) -> None:
    keys = Keys(namespace)
    lock, lock_info = keys.lock("work"), keys.lock_info("work")
    {
        "lock-text": lambda: redis_client.set(lock, "garbage"),
        "lock-float": lambda: redis_client.set(lock, "1.5"),
        "lock-hash": lambda: redis_client.hset(lock, "garbage", 1),
        "lock-info-string": lambda: redis_client.set(lock_info, "a string where a hash belongs"),
        "own-field-text": lambda: redis_client.hset(lock_info, DEAD_POOL, "garbage"),
        "own-field-float": lambda: redis_client.hset(lock_info, DEAD_POOL, "2.5"),
    }[garbage]()
    redis_client.lpush(keys.queue("work"), b"job")

    assert fetch(redis_client, keys, "work") == [b"job", 1, b""]
    assert redis_client.lrange(keys.in_progress("work", DEAD_POOL), 0, -1) == [b"job"]
    assert redis_client.get(lock) == b"1"
    assert redis_client.hget(lock_info, DEAD_POOL) == b"1"


# --- 3. a reaper judges a pool by the longer of its own and the pool's declared dead_after ----------------------


def test_a_pool_with_a_short_dead_after_does_not_reap_a_live_pool_with_longer_settings(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, release: threading.Event
) -> None:
    """The slow pool beats every 4 s, so its heartbeat is often more than the eager pool's 2 s old."""
    started = threading.Event()
    log = JobLog()
    slow = make_pool(concurrency=1, heartbeat_interval=4.0, dead_after=12.0)

    @slow.job("long")
    def long_job(job: Job) -> None:
        log.record(job)
        started.set()
        release.wait(6)

    eager = make_pool(concurrency=1, heartbeat_interval=0.2, dead_after=2.0)
    eager.job("long", log.record)
    slow.start()
    job = enqueuer.enqueue("long")
    assert started.wait(5)
    eager.start()

    # Long enough for the eager pool's reaper (every 0.5 s) to see the slow pool's heartbeat at its oldest.
    deadline = time.monotonic() + 5.5
    while time.monotonic() < deadline:
        assert view.in_progress("long", slow.pool_id), "the live pool's job was taken from it"
        assert view.client.sismember(view.key("worker_pools"), slow.pool_id)
        time.sleep(0.1)
    release.set()
    slow.drain(timeout=10)
    eager.drain(timeout=10)

    assert log.runs_per_id() == {job.id: 1}


def test_a_dead_after_that_is_not_comfortably_above_the_heartbeat_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 3 heartbeats"):
        WorkerPool("ns", "redis://127.0.0.1:6379/0", heartbeat_interval=5, dead_after=12)
    with pytest.raises(ValueError, match="at least 3 heartbeats"):
        WorkerPool("ns", "redis://127.0.0.1:6379/0", heartbeat_interval=0.5, dead_after=1)


# --- 5. a unique lock is released only by the job it belongs to ---------------------------------------------


def test_a_retried_unique_job_does_not_release_the_lock_of_a_pending_identical_job(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    pool = make_pool(concurrency=1)

    @pool.job("sync", backoff=lambda job: 1)
    def fail_once(job: Job) -> None:
        log.record(job)
        if job.fails == 0:
            raise RuntimeError("first try fails")

    first = enqueuer.enqueue_unique("sync", {"shop": 7})
    assert first is not None
    pool.start()
    wait_until(view.retry, what="the first job to fail into the retry set")
    pending = enqueuer.enqueue_unique_in("sync", 3600, {"shop": 7})
    assert pending is not None, "the first job released its lock when it started"

    wait_until(lambda: log.runs_per_id()[first.id] == 2, what="the retry to run")
    pool.drain(timeout=5)

    assert enqueuer.enqueue_unique("sync", {"shop": 7}) is None, "the pending job still holds its lock"
    assert view.client.get(first.unique_key) == pending.to_json().encode()


def test_deleting_a_scheduled_unique_job_leaves_a_lock_that_is_not_its_own(
    namespace: str, redis_client: redis.Redis, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    old = enqueuer.enqueue_unique_in("digest", 3600, {"user": 1})
    assert old is not None
    view.client.delete(old.unique_key)  # its lock expired...
    newer = enqueuer.enqueue_unique("digest", {"user": 1})  # ...and an identical job took a new one
    assert newer is not None

    Client(namespace, redis_client).delete_scheduled_job(old.run_at, old.id)

    assert view.client.get(newer.unique_key) == newer.to_json().encode()
    assert enqueuer.enqueue_unique("digest", {"user": 1}) is None


def test_deleting_a_scheduled_unique_job_releases_its_own_lock(
    namespace: str, redis_client: redis.Redis, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    job = enqueuer.enqueue_unique_in("digest", 3600, {"user": 2})
    assert job is not None
    Client(namespace, redis_client).delete_scheduled_job(job.run_at, job.id)
    assert view.client.exists(job.unique_key) == 0
    assert enqueuer.enqueue_unique("digest", {"user": 2}) is not None


def test_a_by_key_replacement_keeps_the_pending_job_as_owner_and_the_run_uses_the_newest_args(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    first = enqueuer.enqueue_unique_by_key("sync", {"rev": 1}, key={"user": 42})
    assert first is not None
    assert enqueuer.enqueue_unique_by_key("sync", {"rev": 2}, key={"user": 42}) is None
    log = JobLog()
    pool = make_pool(concurrency=1)
    pool.job("sync", log.record)
    pool.start()
    [ran] = log.wait_for(1)
    pool.drain(timeout=5)

    assert (ran.id, ran.args) == (first.id, {"rev": 2})
    assert view.client.exists(first.unique_key) == 0
    assert view.idle_problems("sync", pool.pool_id) == []


# --- 6. identical payloads in flight at once hold a lease each ---------------------------------------------


def test_two_queue_entries_with_identical_bytes_and_a_timeout_run_twice_not_three_times(
    make_pool: PoolFactory, view: NamespaceView, release: threading.Event
) -> None:
    payload = Job(name="twin", id="same-id", enqueued_at=1).to_json()
    view.client.lpush(view.key("jobs:twin"), payload, payload)
    view.client.sadd(view.key("known_jobs"), "twin")
    both_running = threading.Barrier(2, timeout=5)
    runs: list[str] = []
    pool = make_pool(concurrency=2)

    @pool.job("twin", timeout=30)
    def twin(job: Job) -> None:
        runs.append(job.id)
        both_running.wait()

    pool.start()
    pool.drain(timeout=10)

    assert runs == ["same-id", "same-id"]
    assert view.in_progress("twin", pool.pool_id) == [], "both acks were accepted"
    assert view.client.zcard(view.key("jobs:twin:leases")) == 0
    assert view.idle_problems("twin", pool.pool_id) == []


# --- 10. garbage members never stop the reaper ---------------------------------------------------------------


def test_non_utf8_and_invalid_members_are_skipped_and_the_reaper_still_recovers_a_dead_pool(
    namespace: str, redis_client: redis.Redis, view: NamespaceView, caplog: pytest.LogCaptureFixture
) -> None:
    keys = Keys(namespace)
    view.client.sadd(keys.known_jobs, "report", b"\xff\xfe", "x:lock")
    view.client.sadd(keys.worker_pools, DEAD_POOL, b"\xc3\x28", "bad pool")
    view.client.hset(keys.worker_pool(DEAD_POOL), mapping={"heartbeat_at": 1, "job_names": "report"})
    view.client.lpush(keys.in_progress("report", DEAD_POOL), b"job-1")
    view.client.hset(keys.lock_info("report"), mapping={DEAD_POOL: 1, b"\xff": 1})
    reaper = make_reaper(redis_client, keys)

    with caplog.at_level(logging.ERROR, logger="workq"):
        assert reaper.reap() == 1
    assert view.queued("report") == [b"job-1"]
    assert view.client.sismember(keys.worker_pools, DEAD_POOL) == 0
    skipped = [record.getMessage() for record in caplog.records if "skipping" in record.getMessage()]
    assert len(skipped) == 5, skipped
