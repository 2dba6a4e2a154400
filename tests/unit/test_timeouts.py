"""LeaseKeeper on fakeredis with a stepped clock: a job whose lease expired counts a failed run (retry, then dead);
a job that checked in, a job already acknowledged and a job without a time-out stay as they are."""

from __future__ import annotations

import json
from typing import Any, cast

import fakeredis
import pytest

from support import SteppedClock, fetch_args, one_fetched
from workq.handler import JobOptions
from workq.job import Job
from workq.keys import Keys
from workq.registration import Registration
from workq.scripts import Scripts
from workq.timeouts import BATCH, LeaseKeeper

NOW = 1_700_000_000
POOL = "a1b2c3d4e5f6a1b2c3d4e5f6"
OTHER_POOL = "0f0f0f0f0f0f0f0f0f0f0f0f"
TIMEOUT = 30
TOKEN = "0123456789abcdef"


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock(NOW)


def registration(keys: Keys, name: str, timeout: float, pool_id: str = POOL, max_fails: int = 4) -> Registration:
    def never_called(job: Job) -> None:
        raise AssertionError("the lease keeper runs no handler")

    options = JobOptions(timeout=timeout, max_fails=max_fails, backoff=lambda job: 10)
    return Registration.build(keys, pool_id, name, never_called, options)


@pytest.fixture
def keeper(fake_redis: fakeredis.FakeRedis, keys: Keys, scripts: Scripts, clock: SteppedClock) -> LeaseKeeper:
    registrations = [
        registration(keys, "timed", TIMEOUT),
        registration(keys, "untimed", 0),
        registration(keys, "once", TIMEOUT, max_fails=1),
    ]
    return LeaseKeeper(fake_redis, keys, scripts, registrations, clock)


def job_bytes(job_id: str, name: str = "timed") -> bytes:
    return Job(name=name, id=job_id, enqueued_at=NOW).to_json().encode()


def retrying(client: fakeredis.FakeRedis, keys: Keys) -> list[tuple[dict[str, Any], float]]:
    """The retry set's jobs (parsed) and scores."""
    return [(json.loads(member), score) for member, score in client.zrange(keys.retry, 0, -1, withscores=True)]


def fetch(
    client: fakeredis.FakeRedis, scripts: Scripts, keys: Keys, name: str, *, timeout: float, pool_id: str = POOL
) -> bytes:
    """One fetch of `name` by `pool_id` at NOW, as a worker does it (recording a lease when `timeout` is set)."""
    fetch_keys = registration(keys, name, timeout, pool_id).fetch_keys(keys)
    result = one_fetched(scripts.fetch(keys=list(fetch_keys), args=fetch_args(pool_id, NOW, TOKEN, [timeout])))
    assert isinstance(result, list), f"nothing to fetch in {name}"
    payload: bytes = result[0]
    return payload


def ack(client: fakeredis.FakeRedis, keys: Keys, name: str, payload: bytes, pool_id: str = POOL) -> None:
    """A successful ack as ack.lua does it, whatever extra keys it takes: remove, uncount, drop the lease."""
    assert client.lrem(keys.in_progress(name, pool_id), 1, cast(Any, payload)) == 1
    client.decr(keys.lock(name))
    client.hincrby(keys.lock_info(name), pool_id, -1)
    client.zrem(keys.leases(name), lease(payload, pool_id))


def lease(payload: bytes, pool_id: str = POOL) -> bytes:
    """How fetch.lua names a run's lease."""
    return f"{pool_id}:{TOKEN}:".encode() + payload


def test_a_job_whose_lease_expired_counts_a_failed_run_and_retries_after_its_backoff(
    keeper: LeaseKeeper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys, clock: SteppedClock
) -> None:
    fake_redis.lpush(keys.queue("timed"), job_bytes("old"))
    fetch(fake_redis, scripts, keys, "timed", timeout=TIMEOUT)
    fake_redis.lpush(keys.queue("timed"), job_bytes("new"))

    clock.now = NOW + TIMEOUT
    assert keeper.expire_due() == 1

    [(failed, retry_at)] = retrying(fake_redis, keys)
    assert (failed["id"], failed["fails"], retry_at) == ("old", 1, NOW + TIMEOUT + 10)
    assert "timed out" in failed["err"] and failed["failed_at"] == NOW + TIMEOUT
    assert fake_redis.lrange(keys.queue("timed"), 0, -1) == [job_bytes("new")]
    assert fake_redis.exists(keys.in_progress("timed", POOL)) == 0
    assert fake_redis.get(keys.lock("timed")) == b"0"
    assert fake_redis.hgetall(keys.lock_info("timed")) == {}
    assert fake_redis.zcard(keys.leases("timed")) == 0
    assert fake_redis.hget(keys.stats("timed", NOW + TIMEOUT), "failed") == b"1"


def test_a_job_whose_lease_expired_on_its_last_allowed_failure_goes_dead(
    keeper: LeaseKeeper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys, clock: SteppedClock
) -> None:
    fake_redis.lpush(keys.queue("once"), job_bytes("last", "once"))
    fetch(fake_redis, scripts, keys, "once", timeout=TIMEOUT)
    clock.now = NOW + TIMEOUT
    assert keeper.expire_due() == 1
    [(member, died_at)] = fake_redis.zrange(keys.dead, 0, -1, withscores=True)
    assert (json.loads(member)["fails"], died_at) == (1, NOW + TIMEOUT)
    assert fake_redis.zcard(keys.retry) == 0


def test_a_job_within_its_timeout_stays_in_progress(
    keeper: LeaseKeeper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys, clock: SteppedClock
) -> None:
    fake_redis.lpush(keys.queue("timed"), b"job")
    fetch(fake_redis, scripts, keys, "timed", timeout=TIMEOUT)
    clock.now = NOW + TIMEOUT - 0.5
    assert keeper.expire_due() == 0
    assert fake_redis.lrange(keys.in_progress("timed", POOL), 0, -1) == [b"job"]
    assert fake_redis.get(keys.lock("timed")) == b"1"


def test_a_job_whose_lease_was_extended_by_a_checkin_is_left_running(
    keeper: LeaseKeeper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys, clock: SteppedClock
) -> None:
    fake_redis.lpush(keys.queue("timed"), b"job")
    payload = fetch(fake_redis, scripts, keys, "timed", timeout=TIMEOUT)
    member = lease(payload)
    fake_redis.zadd(keys.leases("timed"), {member: NOW + 20 + TIMEOUT}, xx=True)  # checkin at NOW + 20

    clock.now = NOW + TIMEOUT + 1
    assert keeper.expire_due() == 0
    assert fake_redis.llen(keys.in_progress("timed", POOL)) == 1
    assert fake_redis.zscore(keys.leases("timed"), member) == NOW + 20 + TIMEOUT

    clock.now = NOW + 20 + TIMEOUT
    assert keeper.expire_due() == 1


def test_a_lease_of_a_job_already_acknowledged_is_dropped_and_nothing_else_changes(
    keeper: LeaseKeeper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys, clock: SteppedClock
) -> None:
    fake_redis.lpush(keys.queue("timed"), b"job", b"other")
    payload = fetch(fake_redis, scripts, keys, "timed", timeout=TIMEOUT)
    fetch(fake_redis, scripts, keys, "timed", timeout=TIMEOUT)
    ack(fake_redis, keys, "timed", payload)
    member = lease(payload)
    fake_redis.zadd(keys.leases("timed"), {member: NOW})  # left behind, e.g. by a gocraft/work pool's ack

    clock.now = NOW + TIMEOUT - 1  # due: only the stale lease, not the other job's
    assert keeper.expire_due() == 0

    assert fake_redis.zscore(keys.leases("timed"), member) is None
    assert fake_redis.exists(keys.queue("timed")) == 0
    assert fake_redis.get(keys.lock("timed")) == b"1"
    assert fake_redis.hgetall(keys.lock_info("timed")) == {POOL.encode(): b"1"}


def test_leases_of_jobs_held_by_other_pools_are_expired_too(
    keeper: LeaseKeeper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys, clock: SteppedClock
) -> None:
    fake_redis.lpush(keys.queue("timed"), job_bytes("theirs"), job_bytes("ours"))
    fetch(fake_redis, scripts, keys, "timed", timeout=TIMEOUT, pool_id=OTHER_POOL)
    fetch(fake_redis, scripts, keys, "timed", timeout=TIMEOUT)

    clock.now = NOW + TIMEOUT
    assert keeper.expire_due() == 2

    assert sorted(job["id"] for job, _ in retrying(fake_redis, keys)) == ["ours", "theirs"]
    assert fake_redis.exists(keys.in_progress("timed", OTHER_POOL), keys.in_progress("timed", POOL)) == 0
    assert fake_redis.hgetall(keys.lock_info("timed")) == {}
    assert fake_redis.get(keys.lock("timed")) == b"0"


def test_job_names_without_a_timeout_are_not_looked_at(
    keeper: LeaseKeeper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys, clock: SteppedClock
) -> None:
    fake_redis.lpush(keys.queue("untimed"), b"job")
    fetch(fake_redis, scripts, keys, "untimed", timeout=0)
    fake_redis.zadd(keys.leases("untimed"), {lease(b"job"): NOW})  # another pool runs it with a timeout
    clock.now = NOW + 3600
    assert keeper.expire_due() == 0
    assert fake_redis.llen(keys.in_progress("untimed", POOL)) == 1


def test_a_job_payload_containing_colons_is_matched_exactly(
    keeper: LeaseKeeper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys, clock: SteppedClock
) -> None:
    payload = b'{"name":"timed","id":"periodic:timed:*/5 * * * * *:1700000000","t":1700000000,"args":null}'
    fake_redis.lpush(keys.queue("timed"), payload)
    fetch(fake_redis, scripts, keys, "timed", timeout=TIMEOUT)
    clock.now = NOW + TIMEOUT
    assert keeper.expire_due() == 1
    assert [job["id"] for job, _ in retrying(fake_redis, keys)] == ["periodic:timed:*/5 * * * * *:1700000000"]


def test_more_expired_leases_than_one_batch_are_all_expired_over_successive_passes(
    keeper: LeaseKeeper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys, clock: SteppedClock
) -> None:
    jobs = BATCH + 5
    fake_redis.lpush(keys.queue("timed"), *[job_bytes(f"job{i}") for i in range(jobs)])
    for _ in range(jobs):
        fetch(fake_redis, scripts, keys, "timed", timeout=TIMEOUT)
    clock.now = NOW + TIMEOUT

    moved = [keeper.expire_due() for _ in range(3)]

    assert sum(moved) == jobs and moved[-1] == 0
    assert fake_redis.zcard(keys.retry) == jobs
    assert fake_redis.get(keys.lock("timed")) == b"0"


def test_a_lease_written_before_run_tokens_still_expires(
    keeper: LeaseKeeper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys, clock: SteppedClock
) -> None:
    """An older workq named leases `<pool id>:<job bytes>`: after an upgrade its overrun jobs still come back."""
    payload = b'{"name":"timed","id":"old-format"}'
    fake_redis.rpush(keys.in_progress("timed", POOL), payload)
    fake_redis.zadd(keys.leases("timed"), {POOL.encode() + b":" + payload: NOW})
    assert keeper.expire_due() == 1
    assert [job["id"] for job, _ in retrying(fake_redis, keys)] == ["old-format"]
