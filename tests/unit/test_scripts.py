"""The fetch and ack Lua scripts, run on fakeredis: what they take, what they count, what they refuse."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest

from workq.keys import Keys
from workq.scripts import Scripts

POOL = "pool0000pool0000pool0000"
NOW = 1_800_000_000
STATS = "stats-key"


@pytest.fixture
def scripts(fake_redis: fakeredis.FakeRedis) -> Scripts:
    return Scripts.register(fake_redis)


@pytest.fixture
def keys(namespace: str) -> Keys:
    return Keys(namespace)


def fetch_keys(keys: Keys, *names: str) -> list[str]:
    return [
        key
        for name in names
        for key in (
            keys.queue(name),
            keys.in_progress(name, POOL),
            keys.paused(name),
            keys.lock(name),
            keys.lock_info(name),
            keys.max_concurrency(name),
            keys.leases(name),
        )
    ]


def fetch(scripts: Scripts, keys: Keys, *names: str, timeout: int = 0) -> object:
    return scripts.fetch(keys=fetch_keys(keys, *names), args=[POOL, NOW, *[timeout] * len(names)])


def ack(scripts: Scripts, keys: Keys, name: str, payload: bytes, *destination: object) -> object:
    ack_keys = [keys.in_progress(name, POOL), keys.lock(name), keys.lock_info(name), keys.leases(name), STATS]
    args: list[Any] = [POOL, payload, "", "", "processed", 3600]
    if destination:
        key, score, filed = destination
        ack_keys.append(key)  # type: ignore[arg-type]
        args[2:4] = [score, filed]
    return scripts.ack(keys=ack_keys, args=args)


def test_fetch_takes_the_oldest_job_into_this_pools_in_progress_list(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"first", b"second")
    assert fetch(scripts, keys, "a") == [b"first", 1, b""]
    assert fake_redis.lrange(keys.in_progress("a", POOL), 0, -1) == [b"first"]
    assert fake_redis.lrange(keys.queue("a"), 0, -1) == [b"second"]
    assert fake_redis.get(keys.lock("a")) == b"1"
    assert fake_redis.hgetall(keys.lock_info("a")) == {POOL.encode(): b"1"}


def test_fetch_returns_nothing_when_every_queue_is_empty(scripts: Scripts, keys: Keys) -> None:
    assert fetch(scripts, keys, "a", "b") is None


def test_fetch_tries_names_in_the_given_order(scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis) -> None:
    fake_redis.lpush(keys.queue("a"), b"job-a")
    fake_redis.lpush(keys.queue("b"), b"job-b")
    assert fetch(scripts, keys, "b", "a") == [b"job-b", 1, b""]
    assert fetch(scripts, keys, "b", "a") == [b"job-a", 2, b""]


def test_fetch_skips_a_paused_name(scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis) -> None:
    fake_redis.lpush(keys.queue("a"), b"job-a")
    fake_redis.lpush(keys.queue("b"), b"job-b")
    fake_redis.set(keys.paused("a"), "1")
    assert fetch(scripts, keys, "a", "b") == [b"job-b", 2, b""]
    assert fetch(scripts, keys, "a") is None


def test_fetch_respects_max_concurrency_across_pools(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"1", b"2", b"3")
    fake_redis.set(keys.max_concurrency("a"), 2)
    assert fetch(scripts, keys, "a") == [b"1", 1, b""]
    assert fetch(scripts, keys, "a") == [b"2", 1, b""]
    assert fetch(scripts, keys, "a") is None
    ack(scripts, keys, "a", b"1")
    assert fetch(scripts, keys, "a") == [b"3", 1, b""]


def test_fetch_without_a_cap_is_unbounded(scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis) -> None:
    fake_redis.lpush(keys.queue("a"), *[str(n).encode() for n in range(5)])
    fake_redis.set(keys.max_concurrency("a"), 0)
    assert [fetch(scripts, keys, "a") for _ in range(5)] == [[str(n).encode(), 1, b""] for n in range(5)]
    assert fake_redis.get(keys.lock("a")) == b"5"


def test_ack_removes_the_job_and_gives_back_its_counts(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"job")
    fetch(scripts, keys, "a")
    assert ack(scripts, keys, "a", b"job") == 1
    assert fake_redis.llen(keys.in_progress("a", POOL)) == 0
    assert fake_redis.get(keys.lock("a")) == b"0"
    assert fake_redis.hgetall(keys.lock_info("a")) == {}


def test_ack_removes_only_one_copy_of_identical_bytes(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"same", b"same")
    fetch(scripts, keys, "a")
    fetch(scripts, keys, "a")
    ack(scripts, keys, "a", b"same")
    assert fake_redis.lrange(keys.in_progress("a", POOL), 0, -1) == [b"same"]
    assert fake_redis.get(keys.lock("a")) == b"1"


def test_ack_files_a_failed_job_in_a_sorted_set(scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis) -> None:
    fake_redis.lpush(keys.queue("a"), b"job")
    fetch(scripts, keys, "a")
    assert ack(scripts, keys, "a", b"job", keys.retry, 1700000060, b"job-with-fails") == 1
    assert fake_redis.zrange(keys.retry, 0, -1, withscores=True) == [(b"job-with-fails", 1700000060)]


def test_ack_with_no_score_puts_the_job_back_at_the_fetching_end(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"job", b"newer")
    fetch(scripts, keys, "a")
    ack(scripts, keys, "a", b"job", keys.queue("a"), "", b"job")
    assert fetch(scripts, keys, "a") == [b"job", 1, b""]


def test_ack_of_a_job_no_longer_in_progress_changes_nothing(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.set(keys.lock("a"), 1)
    assert ack(scripts, keys, "a", b"gone", keys.dead, 5, b"gone") == 0
    assert fake_redis.get(keys.lock("a")) == b"1"
    assert fake_redis.exists(keys.dead) == 0


def test_ack_never_takes_the_lock_below_zero(scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis) -> None:
    fake_redis.lpush(keys.in_progress("a", POOL), b"job")  # in progress, but its counts were already taken back
    assert ack(scripts, keys, "a", b"job") == 1
    assert fake_redis.get(keys.lock("a")) == b"0"
    assert fake_redis.hgetall(keys.lock_info("a")) == {}


def test_fetch_of_a_job_with_a_timeout_records_its_lease(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"job")
    fetch(scripts, keys, "a", timeout=30)
    assert fake_redis.zrange(keys.leases("a"), 0, -1, withscores=True) == [(POOL.encode() + b":job", NOW + 30)]


def test_ack_drops_the_lease(scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis) -> None:
    fake_redis.lpush(keys.queue("a"), b"job")
    fetch(scripts, keys, "a", timeout=30)
    assert ack(scripts, keys, "a", b"job") == 1
    assert fake_redis.zcard(keys.leases("a")) == 0


def test_reap_puts_a_dead_pools_jobs_back_in_their_old_order_and_takes_back_its_counts(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"one", b"two", b"three", b"four")
    for _ in range(3):
        fetch(scripts, keys, "a", timeout=30)
    fake_redis.set(keys.lock("a"), 5)  # two more held by another pool
    fake_redis.hset(keys.lock_info("a"), "other", 2)
    reap_keys = [keys.queue("a"), keys.in_progress("a", POOL), keys.lock("a"), keys.lock_info("a"), keys.leases("a")]
    assert scripts.reap(keys=reap_keys, args=[POOL]) == 3
    assert [fake_redis.rpop(keys.queue("a")) for _ in range(4)] == [b"one", b"two", b"three", b"four"]
    assert fake_redis.get(keys.lock("a")) == b"2"
    assert fake_redis.hgetall(keys.lock_info("a")) == {b"other": b"2"}
    assert fake_redis.zcard(keys.leases("a")) == 0
    assert fake_redis.llen(keys.in_progress("a", POOL)) == 0


def expire(scripts: Scripts, keys: Keys, now: float) -> object:
    member = POOL.encode() + b":job"
    lease_keys = [keys.leases("a"), keys.queue("a"), keys.lock("a"), keys.lock_info("a"), keys.in_progress("a", POOL)]
    return scripts.expire_leases(keys=lease_keys, args=[now, member, b"job", POOL])


def test_an_expired_lease_puts_the_job_back_on_its_queue(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"job")
    fetch(scripts, keys, "a", timeout=30)
    assert expire(scripts, keys, NOW + 29) == 0, "not before its deadline"
    assert expire(scripts, keys, NOW + 30) == 1
    assert fake_redis.lrange(keys.queue("a"), 0, -1) == [b"job"]
    assert fake_redis.llen(keys.in_progress("a", POOL)) == 0
    assert fake_redis.get(keys.lock("a")) == b"0"
    assert ack(scripts, keys, "a", b"job") == 0, "the late ack of the timed-out run changes nothing"
    assert fake_redis.lrange(keys.queue("a"), 0, -1) == [b"job"]


def test_a_lease_extended_since_it_was_read_is_left_alone(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"job")
    fetch(scripts, keys, "a", timeout=30)
    fake_redis.zadd(keys.leases("a"), {POOL.encode() + b":job": NOW + 60}, xx=True)
    assert expire(scripts, keys, NOW + 30) == 0
    assert fake_redis.llen(keys.in_progress("a", POOL)) == 1


def test_ack_counts_the_outcome_in_the_days_stats_hash_with_an_expiry(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"one", b"two")
    fetch(scripts, keys, "a")
    fetch(scripts, keys, "a")
    ack(scripts, keys, "a", b"one")
    ack(scripts, keys, "a", b"two")
    assert fake_redis.hgetall(STATS) == {b"processed": b"2"}
    assert 0 < fake_redis.ttl(STATS) <= 3600
    assert ack(scripts, keys, "a", b"two") == 0
    assert fake_redis.hgetall(STATS) == {b"processed": b"2"}, "a job no longer in progress is not counted again"


def test_ack_of_a_run_whose_lease_was_taken_over_changes_nothing(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"job")
    [_, _, first_lease] = fetch(scripts, keys, "a", timeout=30)  # type: ignore[misc]
    assert expire(scripts, keys, NOW + 30) == 1
    [_, _, second_lease] = scripts.fetch(keys=fetch_keys(keys, "a"), args=[POOL, NOW + 31, 30])  # type: ignore[misc]
    assert second_lease != first_lease
    late = [keys.in_progress("a", POOL), keys.lock("a"), keys.lock_info("a"), keys.leases("a"), STATS]
    assert scripts.ack(keys=late, args=[POOL, b"job", "", "", "processed", 3600, first_lease]) == 0
    assert fake_redis.lrange(keys.in_progress("a", POOL), 0, -1) == [b"job"], "the new run still holds the job"
    assert fake_redis.get(keys.lock("a")) == b"1"
    assert scripts.ack(keys=late, args=[POOL, b"job", "", "", "processed", 3600, second_lease]) == 1


def test_extend_lease_only_while_the_run_holds_it(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"job")
    [_, _, lease] = fetch(scripts, keys, "a", timeout=30)  # type: ignore[misc]
    member = POOL.encode() + b":job"
    assert scripts.extend_lease(keys=[keys.leases("a")], args=[member, lease, NOW + 90]) == 1
    assert fake_redis.zscore(keys.leases("a"), member) == NOW + 90
    assert scripts.extend_lease(keys=[keys.leases("a")], args=[member, lease, NOW + 120]) == 0, "stale deadline"
