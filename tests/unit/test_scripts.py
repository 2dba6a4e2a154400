"""The fetch and ack Lua scripts, run on fakeredis: what they take, what they count, what they refuse."""

from __future__ import annotations

from typing import Any, cast

import fakeredis
import pytest
import redis

from support import fetch_args, one_fetched
from workq.connection import RedisClient, dedicated_client
from workq.keys import STATS_LIFETIME, Keys
from workq.run import Ack, AckCall
from workq.scripts import LuaScript, Scripts, call_many

POOL = "pool0000pool0000pool0000"
NOW = 1_800_000_000
STATS = "stats-key"


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


def fetch(scripts: Scripts, keys: Keys, *names: str, timeout: int = 0, token: str = "run1", now: float = NOW) -> object:
    """One slot: the job taken as [bytes, group, leased], or None."""
    return one_fetched(
        scripts.fetch(keys=fetch_keys(keys, *names), args=fetch_args(POOL, now, token, [timeout] * len(names)))
    )


def lease(payload: bytes, token: str = "run1") -> bytes:
    """How fetch.lua names a run's lease: `<pool id>:<run token>:<job bytes>`."""
    return f"{POOL}:{token}:".encode() + payload


def ack_keys(keys: Keys, name: str) -> list[str]:
    return [keys.in_progress(name, POOL), keys.lock(name), keys.lock_info(name), keys.leases(name), STATS]


def ack(scripts: Scripts, keys: Keys, name: str, payload: bytes, *destination: object, held: bytes = b"") -> object:
    """One run, counted 'processed', filed in `destination` (key, delay, job bytes) if given: its reply."""
    outcome = Ack(counted="processed")
    if destination:
        key, delay, filed = destination
        outcome = Ack(cast(str, key), None if delay == "" else cast(float, delay), cast(bytes, filed), "processed")
    call = AckCall(POOL, NOW)
    call.add(ack_keys(keys, name), payload, outcome, held)
    [reply] = scripts.ack(keys=call.keys, args=call.args)
    return reply


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
    assert ack(scripts, keys, "a", b"job", keys.retry, 60, b"job-with-fails") == 1
    assert fake_redis.zrange(keys.retry, 0, -1, withscores=True) == [(b"job-with-fails", NOW + 60)]


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
    assert fetch(scripts, keys, "a", timeout=30) == [b"job", 1, b"1"]
    assert fake_redis.zrange(keys.leases("a"), 0, -1, withscores=True) == [(lease(b"job"), NOW + 30)]


def test_identical_payloads_in_flight_hold_a_lease_each(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"same", b"same")
    fetch(scripts, keys, "a", timeout=30, token="first")
    fetch(scripts, keys, "a", timeout=30, token="second")
    assert fake_redis.zcard(keys.leases("a")) == 2
    assert ack(scripts, keys, "a", b"same", held=lease(b"same", "first")) == 1
    assert fake_redis.zrange(keys.leases("a"), 0, -1) == [lease(b"same", "second")], "the other run keeps its lease"
    assert ack(scripts, keys, "a", b"same", held=lease(b"same", "second")) == 1
    assert fake_redis.llen(keys.in_progress("a", POOL)) == 0


def test_ack_drops_the_lease(scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis) -> None:
    fake_redis.lpush(keys.queue("a"), b"job")
    fetch(scripts, keys, "a", timeout=30)
    assert ack(scripts, keys, "a", b"job", held=lease(b"job")) == 1
    assert fake_redis.zcard(keys.leases("a")) == 0


def test_reap_puts_a_dead_pools_jobs_back_in_their_old_order_and_takes_back_its_counts(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"one", b"two", b"three", b"four")
    for run in range(3):
        fetch(scripts, keys, "a", timeout=30, token=f"run{run}")
    fake_redis.set(keys.lock("a"), 5)  # two more held by another pool
    fake_redis.hset(keys.lock_info("a"), "other", 2)
    fake_redis.zadd(keys.leases("a"), {b"other:run9:job": NOW + 30})
    reap_keys = [keys.queue("a"), keys.in_progress("a", POOL), keys.lock("a"), keys.lock_info("a"), keys.leases("a")]
    assert scripts.reap(keys=reap_keys, args=[POOL, "1"]) == [3, b""]
    assert [fake_redis.rpop(keys.queue("a")) for _ in range(4)] == [b"one", b"two", b"three", b"four"]
    assert fake_redis.get(keys.lock("a")) == b"2"
    assert fake_redis.hgetall(keys.lock_info("a")) == {b"other": b"2"}
    assert fake_redis.zrange(keys.leases("a"), 0, -1) == [b"other:run9:job"], "only the dead pool's leases go"
    assert fake_redis.llen(keys.in_progress("a", POOL)) == 0


@pytest.mark.parametrize("broken", ["queue", "in_progress"])
def test_reap_moves_nothing_when_a_list_has_the_wrong_type(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis, broken: str
) -> None:
    fake_redis.lpush(keys.queue("a"), b"one", b"two")
    fetch(scripts, keys, "a")
    wrong = keys.queue("a") if broken == "queue" else keys.in_progress("a", POOL)
    intact = keys.in_progress("a", POOL) if broken == "queue" else keys.queue("a")
    fake_redis.delete(wrong)
    fake_redis.hset(wrong, "garbage", 1)
    before = fake_redis.lrange(intact, 0, -1)
    reap_keys = [keys.queue("a"), keys.in_progress("a", POOL), keys.lock("a"), keys.lock_info("a"), keys.leases("a")]
    assert scripts.reap(keys=reap_keys, args=[POOL, "1"]) == [0, wrong.encode()]
    assert fake_redis.lrange(intact, 0, -1) == before
    assert fake_redis.get(keys.lock("a")) == b"1", "counts untouched"


def test_reap_of_leftovers_drops_them_without_a_run(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.in_progress("a", POOL), b"placeholder")
    reap_keys = [keys.queue("a"), keys.in_progress("a", POOL), keys.lock("a"), keys.lock_info("a"), keys.leases("a")]
    assert scripts.reap(keys=reap_keys, args=[POOL, "0"]) == [1, b""]
    assert fake_redis.exists(keys.queue("a"), keys.in_progress("a", POOL)) == 0


@pytest.mark.parametrize("kind", ["queue", "dead"])
def test_requeue_leaves_a_member_in_place_when_its_destination_has_the_wrong_type(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis, kind: str
) -> None:
    destination = keys.queue("a") if kind == "queue" else keys.dead
    fake_redis.set(destination, "garbage")
    fake_redis.zadd(keys.retry, {b"job": NOW - 1})
    moved = scripts.requeue(keys=[keys.retry, destination], args=[NOW, b"job", b"job-filed", kind])
    assert moved == [0, destination.encode()]
    assert fake_redis.zrange(keys.retry, 0, -1) == [b"job"]
    assert fake_redis.get(destination) == b"garbage"


def test_an_expired_lease_whose_retry_set_has_the_wrong_type_stays_with_its_job(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"job")
    fetch(scripts, keys, "a", timeout=30)
    fake_redis.set(keys.retry, "garbage")
    assert expire_reply(scripts, keys, NOW + 31) == [0, keys.retry.encode()]
    assert fake_redis.lrange(keys.in_progress("a", POOL), 0, -1) == [b"job"]
    assert fake_redis.zcard(keys.leases("a")) == 1


def test_scripts_read_redis_time_when_no_clock_is_given(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"job")
    fetch(scripts, keys, "a", timeout=30, now="")  # type: ignore[arg-type]
    [(_, deadline)] = fake_redis.zrange(keys.leases("a"), 0, -1, withscores=True)
    seconds, _ = fake_redis.time()
    assert seconds + 29 <= deadline <= seconds + 31


def expire_reply(scripts: Scripts, keys: Keys, now: float, token: str = "run1", where: str = "retry") -> Any:
    """expire_leases for the run of b"job" holding lease `token`, filing b"failed" in `where` 10 s from `now`."""
    lease_keys = [
        *(keys.leases("a"), keys.lock("a"), keys.lock_info("a"), keys.retry, keys.dead, STATS),
        keys.in_progress("a", POOL),
    ]
    return scripts.expire_leases(
        keys=lease_keys, args=[now, 3600, lease(b"job", token), b"job", POOL, where, 10, b"failed"]
    )


def expire(scripts: Scripts, keys: Keys, now: float, token: str = "run1", where: str = "retry") -> object:
    moved, broken = expire_reply(scripts, keys, now, token, where)
    assert broken == b""
    return moved


def test_an_expired_lease_counts_a_failure_and_files_the_job_where_it_was_told(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"job")
    fetch(scripts, keys, "a", timeout=30)
    assert expire(scripts, keys, NOW + 29) == 0, "not before its deadline"
    assert expire(scripts, keys, NOW + 30) == 1
    assert fake_redis.zrange(keys.retry, 0, -1, withscores=True) == [(b"failed", NOW + 40)]
    assert fake_redis.exists(keys.queue("a")) == 0
    assert fake_redis.llen(keys.in_progress("a", POOL)) == 0
    assert fake_redis.get(keys.lock("a")) == b"0"
    assert fake_redis.hgetall(STATS) == {b"failed": b"1"}
    assert ack(scripts, keys, "a", b"job", held=lease(b"job")) == 0, "the late ack of the timed-out run changes nothing"
    assert fake_redis.zcard(keys.retry) == 1


@pytest.mark.parametrize(("where", "dead"), [("dead", 1), ("", 0)])
def test_an_expired_lease_out_of_retries_files_the_job_dead_or_drops_it(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis, where: str, dead: int
) -> None:
    fake_redis.lpush(keys.queue("a"), b"job")
    fetch(scripts, keys, "a", timeout=30)
    assert expire(scripts, keys, NOW + 30, where=where) == 1
    assert (fake_redis.zcard(keys.dead), fake_redis.zcard(keys.retry)) == (dead, 0)
    assert fake_redis.llen(keys.in_progress("a", POOL)) == 0


def test_a_lease_extended_since_it_was_read_is_left_alone(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"job")
    fetch(scripts, keys, "a", timeout=30)
    fake_redis.zadd(keys.leases("a"), {lease(b"job"): NOW + 60}, xx=True)
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
    assert 0 < fake_redis.ttl(STATS) <= STATS_LIFETIME
    assert ack(scripts, keys, "a", b"two") == 0
    assert fake_redis.hgetall(STATS) == {b"processed": b"2"}, "a job no longer in progress is not counted again"


def test_ack_of_a_run_whose_lease_was_taken_over_changes_nothing(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"job")
    fetch(scripts, keys, "a", timeout=30, token="first")
    assert expire(scripts, keys, NOW + 30, token="first") == 1
    fake_redis.lpush(keys.queue("a"), b"job")  # due again: the requeuer moved it back (same bytes, for this test)
    fetch(scripts, keys, "a", timeout=30, token="second", now=NOW + 31)
    assert ack(scripts, keys, "a", b"job", held=lease(b"job", "first")) == 0
    assert fake_redis.lrange(keys.in_progress("a", POOL), 0, -1) == [b"job"], "the new run still holds the job"
    assert fake_redis.get(keys.lock("a")) == b"1"
    assert ack(scripts, keys, "a", b"job", held=lease(b"job", "second")) == 1


def test_extend_lease_only_while_the_run_holds_it(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"job")
    fetch(scripts, keys, "a", timeout=30)
    member = lease(b"job")
    assert scripts.extend_lease(keys=[keys.leases("a")], args=[member, 90, NOW]) == 1
    assert fake_redis.zscore(keys.leases("a"), member) == NOW + 90
    assert expire(scripts, keys, NOW + 90) == 1
    assert scripts.extend_lease(keys=[keys.leases("a")], args=[member, 120, NOW + 91]) == 0, "the lease is gone"


# --- several jobs per call (the dispatcher's batches) ------------------------------------------------------


def fetch_many(
    scripts: Scripts, keys: Keys, slots: int, *names: str, orders: list[list[int]] | None = None, timeout: int = 0
) -> list[list[object]]:
    """One fetch.lua call of up to `slots` jobs: each slot tries `names` in their order, or in its own of `orders`
    (1-based group numbers); the jobs taken as [bytes, group, leased]."""
    args = fetch_args(POOL, NOW, "run", [timeout] * len(names), slots)
    if orders is not None:
        args = [POOL, NOW, slots, *[timeout] * len(names)]
        for slot, order in enumerate(orders):
            args.extend((f"run{slot}", *order))
    reply = scripts.fetch(keys=fetch_keys(keys, *names), args=args)
    taken = list(reply[1:])
    return [taken[at : at + 3] for at in range(0, len(taken), 3)]


def test_one_fetch_takes_several_jobs_in_queue_order_each_with_its_own_lease(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"1", b"2", b"3", b"4")
    assert fetch_many(scripts, keys, 3, "a", timeout=30) == [[b"1", 1, b"1"], [b"2", 1, b"1"], [b"3", 1, b"1"]]
    assert fake_redis.lrange(keys.queue("a"), 0, -1) == [b"4"]
    assert fake_redis.get(keys.lock("a")) == b"3"
    assert fake_redis.hgetall(keys.lock_info("a")) == {POOL.encode(): b"3"}
    leases = fake_redis.zrange(keys.leases("a"), 0, -1, withscores=True)
    assert set(leases) == {(f"{POOL}:run{token}:{n}".encode(), NOW + 30) for n, token in ((1, ""), (2, 1), (3, 2))}


def test_a_fetch_ends_at_the_first_slot_that_finds_nothing(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"1", b"2")
    assert fetch_many(scripts, keys, 10, "a", "b") == [[b"1", 1, b""], [b"2", 1, b""]]
    assert fetch_many(scripts, keys, 10, "a", "b") == []
    assert fake_redis.get(keys.lock("a")) == b"2"
    assert fake_redis.get(keys.lock("b")) is None


def test_max_concurrency_is_honoured_for_every_job_of_one_fetch(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"1", b"2", b"3", b"4")
    fake_redis.lpush(keys.queue("b"), b"b1", b"b2")
    fake_redis.set(keys.max_concurrency("a"), 3)
    fake_redis.set(keys.lock("a"), 1)  # one runs in another pool
    assert fetch_many(scripts, keys, 5, "a", "b") == [[b"1", 1, b""], [b"2", 1, b""], [b"b1", 2, b""], [b"b2", 2, b""]]
    assert fake_redis.get(keys.lock("a")) == b"3"
    assert fake_redis.llen(keys.queue("a")) == 2


def test_a_paused_name_is_skipped_by_every_slot(scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis) -> None:
    fake_redis.lpush(keys.queue("a"), b"a1", b"a2")
    fake_redis.lpush(keys.queue("b"), b"b1")
    fake_redis.set(keys.paused("a"), "1")
    assert fetch_many(scripts, keys, 3, "a", "b") == [[b"b1", 2, b""]]
    assert fake_redis.llen(keys.queue("a")) == 2


def test_each_slot_tries_the_names_in_its_own_order(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"a1", b"a2")
    fake_redis.lpush(keys.queue("b"), b"b1", b"b2")
    taken = fetch_many(scripts, keys, 3, "a", "b", orders=[[2, 1], [1, 2], [2, 1]])
    assert taken == [[b"b1", 2, b""], [b"a1", 1, b""], [b"b2", 2, b""]]


def test_a_name_whose_queue_has_the_wrong_type_is_skipped_and_named_while_others_are_fetched(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.hset(keys.queue("a"), "garbage", 1)
    fake_redis.lpush(keys.queue("b"), b"b1", b"b2")
    reply = scripts.fetch(keys=fetch_keys(keys, "a", "b"), args=fetch_args(POOL, NOW, "run", [0, 0], 3))
    assert reply == [keys.queue("a").encode(), b"b1", 2, b"", b"b2", 2, b""]
    assert fake_redis.get(keys.lock("a")) is None


def ack_many(scripts: Scripts, keys: Keys, *runs: tuple[bytes, Ack]) -> list[object]:
    """One ack.lua call filing each (bytes, ack) of job name "a": the reply of each."""
    call = AckCall(POOL, NOW)
    for payload, outcome in runs:
        call.add(ack_keys(keys, "a"), payload, outcome, b"")
    return list(scripts.ack(keys=call.keys, args=call.args))


def test_one_ack_files_several_runs_each_where_it_goes_and_counts_them_together(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"1", b"2", b"3")
    fetch_many(scripts, keys, 3, "a")
    replies = ack_many(
        scripts,
        keys,
        (b"1", Ack(counted="processed")),
        (b"gone", Ack(counted="processed")),
        (b"2", Ack(keys.retry, 60, b"2-failed", counted="failed")),
        (b"3", Ack(counted="processed")),
    )
    assert replies == [1, 0, 1, 1]
    assert fake_redis.llen(keys.in_progress("a", POOL)) == 0
    assert fake_redis.get(keys.lock("a")) == b"0"
    assert fake_redis.hgetall(keys.lock_info("a")) == {}
    assert fake_redis.hgetall(STATS) == {b"processed": b"2", b"failed": b"1"}
    assert fake_redis.zrange(keys.retry, 0, -1, withscores=True) == [(b"2-failed", NOW + 60)]


@pytest.mark.parametrize("destination", ["retry", "queue"])
def test_a_destination_of_the_wrong_type_leaves_its_run_in_progress_and_the_others_are_filed(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis, destination: str
) -> None:
    """No type is checked before the job leaves in progress: the refused write puts it straight back."""
    fake_redis.lpush(keys.queue("a"), b"1", b"2")
    fetch_many(scripts, keys, 2, "a")
    wrong = keys.retry if destination == "retry" else keys.queue("a")
    fake_redis.set(wrong, "garbage")
    refused = Ack(wrong, 60 if destination == "retry" else None, b"1-filed", counted="failed")
    replies = ack_many(scripts, keys, (b"1", refused), (b"2", Ack(counted="processed")))
    assert isinstance(replies[0], bytes) and b"left in progress" in replies[0]
    assert replies[1] == 1
    assert fake_redis.lrange(keys.in_progress("a", POOL), 0, -1) == [b"1"]
    assert fake_redis.get(keys.lock("a")) == b"1", "the run left in progress is still counted"
    assert fake_redis.hgetall(STATS) == {b"processed": b"1"}
    assert fake_redis.get(wrong) == b"garbage"


def test_a_unique_lock_taken_for_a_refused_hand_back_is_released_again(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"1")
    fetch_many(scripts, keys, 1, "a")
    fake_redis.set(keys.queue("a"), "garbage")
    lock = keys.unique("a", "{}")
    hand_back = Ack(keys.queue("a"), None, b"1", relock=(lock, b"1"), outcome="handed_back")
    [reply] = ack_many(scripts, keys, (b"1", hand_back))
    assert isinstance(reply, bytes)
    assert fake_redis.exists(lock) == 0
    assert fake_redis.lrange(keys.in_progress("a", POOL), 0, -1) == [b"1"]


def test_runs_handed_back_in_reverse_fetch_order_keep_their_queue_order(
    scripts: Scripts, keys: Keys, fake_redis: fakeredis.FakeRedis
) -> None:
    fake_redis.lpush(keys.queue("a"), b"1", b"2", b"3")
    fetch_many(scripts, keys, 2, "a")
    back = [(payload, Ack(keys.queue("a"), None, payload, outcome="handed_back")) for payload in (b"2", b"1")]
    assert ack_many(scripts, keys, *back) == [1, 1]
    assert [job for job, _, _ in fetch_many(scripts, keys, 3, "a")] == [b"1", b"2", b"3"]


# --- several calls in one round trip (the async dispatcher's fetch-and-ack) -----------------------------------


@pytest.fixture(params=["pooled", "dedicated"])
def client(request: pytest.FixtureRequest, fake_redis: fakeredis.FakeRedis) -> RedisClient:
    """A pooled client (calls go as a pipeline) or a dispatcher's single-connection one (written on its connection)."""
    return fake_redis if request.param == "pooled" else dedicated_client(fake_redis)


def test_call_many_sends_every_call_in_order_in_one_round_trip(client: RedisClient) -> None:
    incr = LuaScript(client, "return redis.call('incrby', KEYS[1], ARGV[1])")
    replies = call_many([(incr, ["n"], [1]), (incr, ["n"], [10]), (incr, ["m"], [5])], client)
    assert replies == [1, 11, 5]


def test_call_many_puts_a_failed_calls_error_in_its_place_and_runs_the_others(client: RedisClient) -> None:
    incr = LuaScript(client, "return redis.call('incr', KEYS[1])")
    refuse = LuaScript(client, "return redis.error_reply('no')")
    first, refused, last = call_many([(incr, ["n"], []), (refuse, [], []), (incr, ["n"], [])], client)
    assert (first, last) == (1, 2)
    assert isinstance(refused, redis.ResponseError) and "no" in str(refused)


def test_call_many_loads_scripts_the_server_does_not_know(client: RedisClient, fake_redis: fakeredis.FakeRedis) -> None:
    """After a restart or failover the script cache is empty: NOSCRIPT calls did nothing and are sent again."""
    incr = LuaScript(client, "return redis.call('incr', KEYS[1])")
    assert call_many([(incr, ["n"], []), (incr, ["n"], [])], client) == [1, 2]
    fake_redis.script_flush()
    assert call_many([(incr, ["n"], []), (incr, ["n"], [])], client) == [3, 4]


def test_call_many_on_a_dedicated_client_takes_no_second_connection(fake_redis: fakeredis.FakeRedis) -> None:
    dedicated = dedicated_client(fake_redis)
    incr = LuaScript(dedicated, "return redis.call('incr', KEYS[1])")
    pool = fake_redis.connection_pool
    before = len(pool._available_connections) + len(pool._in_use_connections)
    assert call_many([(incr, ["n"], []), (incr, ["n"], [])], dedicated) == [1, 2]
    assert len(pool._available_connections) + len(pool._in_use_connections) == before
