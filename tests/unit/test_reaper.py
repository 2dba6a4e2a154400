"""Reaper on fakeredis with a stepped clock: dead pools' jobs go back to the front of their queues in their old
order with their counts taken back, live pools and the reaper's own pool are left alone, one reaper at a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import fakeredis
import pytest

from support import SteppedClock, fetch_args, one_fetched
from workq.heartbeat import OwnBeats
from workq.keys import Keys
from workq.reaper import Reaper
from workq.scripts import Scripts

NOW = 1_700_000_000
DEAD_AFTER = 60.0
SELF = "5e1f5e1f5e1f5e1f5e1f5e1f"
DEAD = "deaddeaddeaddeaddeaddead"
LIVE = "a11ea11ea11ea11ea11ea11e"


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock(NOW)


@pytest.fixture
def reaper(fake_redis: fakeredis.FakeRedis, keys: Keys, scripts: Scripts, clock: SteppedClock) -> Reaper:
    return Reaper(fake_redis, keys, scripts, pool_id=SELF, dead_after=DEAD_AFTER, lock_for=5, clock=clock)


def beat(client: fakeredis.FakeRedis, keys: Keys, pool_id: str, at: object, worker_ids: str = "") -> None:
    """A heartbeat as any gocraft/work-compatible pool writes it."""
    client.sadd(keys.worker_pools, pool_id)
    client.hset(
        keys.worker_pool(pool_id),
        mapping={
            "heartbeat_at": str(at),
            "started_at": NOW - 3600,
            "job_names": "a,b",
            "concurrency": 4,
            "worker_ids": worker_ids,
            "host": "h",
            "pid": 1,
        },
    )


def fetch(client: fakeredis.FakeRedis, scripts: Scripts, keys: Keys, name: str, pool_id: str, *, count: int) -> None:
    """`count` fetches of `name` by `pool_id`, exactly as the fetch script does them."""
    client.sadd(keys.known_jobs, name)
    fetch_keys = [
        keys.queue(name),
        keys.in_progress(name, pool_id),
        keys.paused(name),
        keys.lock(name),
        keys.lock_info(name),
        keys.max_concurrency(name),
        keys.leases(name),
    ]
    for run in range(count):
        reply = scripts.fetch(keys=fetch_keys, args=fetch_args(pool_id, NOW, f"run{run}", [30]))
        assert one_fetched(reply), f"nothing left in {name} to fetch"


def next_to_run(client: fakeredis.FakeRedis, keys: Keys, name: str) -> list[bytes]:
    """The queue in the order fetch will take it (from the right)."""
    return list(reversed(cast(list[bytes], client.lrange(keys.queue(name), 0, -1))))


def test_a_dead_pools_jobs_go_back_to_the_front_of_their_queue_in_their_old_order(
    reaper: Reaper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys
) -> None:
    fake_redis.lpush(keys.queue("a"), b"a1", b"a2", b"a3", b"a4")
    beat(fake_redis, keys, DEAD, NOW - DEAD_AFTER - 2)
    fetch(fake_redis, scripts, keys, "a", DEAD, count=3)

    assert reaper.reap() == 3

    assert next_to_run(fake_redis, keys, "a") == [b"a1", b"a2", b"a3", b"a4"]
    assert fake_redis.exists(keys.in_progress("a", DEAD)) == 0


def test_a_dead_pools_counts_are_taken_back_and_other_pools_counts_kept(
    reaper: Reaper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys
) -> None:
    fake_redis.lpush(keys.queue("a"), *[f"a{i}".encode() for i in range(5)])
    beat(fake_redis, keys, DEAD, NOW - 3600)
    beat(fake_redis, keys, LIVE, NOW)
    fetch(fake_redis, scripts, keys, "a", DEAD, count=3)
    fetch(fake_redis, scripts, keys, "a", LIVE, count=2)

    reaper.reap()

    assert fake_redis.get(keys.lock("a")) == b"2"
    assert fake_redis.hgetall(keys.lock_info("a")) == {LIVE.encode(): b"2"}
    assert fake_redis.llen(keys.in_progress("a", LIVE)) == 2
    assert fake_redis.zcard(keys.leases("a")) == 2, "only the dead pool's leases go"


def test_the_lock_never_goes_below_zero(
    reaper: Reaper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys
) -> None:
    fake_redis.lpush(keys.queue("a"), b"a1", b"a2")
    beat(fake_redis, keys, DEAD, NOW - 3600)
    fetch(fake_redis, scripts, keys, "a", DEAD, count=2)
    fake_redis.set(keys.lock("a"), 1)  # drifted, e.g. by a gocraft/work pool's unguarded DECR

    reaper.reap()

    assert fake_redis.get(keys.lock("a")) == b"0"
    assert fake_redis.hgetall(keys.lock_info("a")) == {}


def test_a_dead_pool_is_forgotten_with_its_worker_observations(
    reaper: Reaper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys
) -> None:
    beat(fake_redis, keys, DEAD, NOW - 3600, worker_ids="w1,w2")
    beat(fake_redis, keys, LIVE, NOW, worker_ids="w3")
    for worker_id in ("w1", "w2", "w3"):
        fake_redis.hset(keys.worker(worker_id), mapping={"job_name": "a", "job_id": "x", "started_at": NOW})

    assert reaper.reap() == 0, "a dead pool holding nothing is still forgotten"

    assert fake_redis.smembers(keys.worker_pools) == {LIVE.encode()}
    assert fake_redis.exists(keys.worker_pool(DEAD), keys.worker("w1"), keys.worker("w2")) == 0
    assert fake_redis.exists(keys.worker_pool(LIVE), keys.worker("w3")) == 2


def test_a_live_pool_is_left_untouched(
    reaper: Reaper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys
) -> None:
    fake_redis.lpush(keys.queue("a"), b"a1", b"a2")
    beat(fake_redis, keys, LIVE, NOW - DEAD_AFTER + 1, worker_ids="w1")
    fake_redis.hset(keys.worker("w1"), "job_id", "x")
    fetch(fake_redis, scripts, keys, "a", LIVE, count=1)
    before = {key: fake_redis.dump(key) for key in fake_redis.keys("*")}

    assert reaper.reap() == 0

    assert {key: fake_redis.dump(key) for key in fake_redis.keys("*")} == before


def test_a_pool_becomes_dead_only_once_silent_for_longer_than_dead_after(
    reaper: Reaper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys, clock: SteppedClock
) -> None:
    fake_redis.lpush(keys.queue("a"), b"a1")
    beat(fake_redis, keys, LIVE, NOW)
    fetch(fake_redis, scripts, keys, "a", LIVE, count=1)

    clock.now = NOW + DEAD_AFTER + 1  # heartbeat_at is whole seconds: a beat at NOW may have been at NOW + 0.99
    assert reaper.reap() == 0
    assert fake_redis.llen(keys.in_progress("a", LIVE)) == 1

    clock.now = NOW + DEAD_AFTER + 1.5
    assert reaper.reap() == 1
    assert next_to_run(fake_redis, keys, "a") == [b"a1"]


def test_jobs_of_every_name_a_dead_pool_held_are_recovered(
    reaper: Reaper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys
) -> None:
    fake_redis.lpush(keys.queue("a"), b"a1")
    fake_redis.lpush(keys.queue("b"), b"b1", b"b2")
    beat(fake_redis, keys, DEAD, NOW - 3600)
    fetch(fake_redis, scripts, keys, "a", DEAD, count=1)
    fetch(fake_redis, scripts, keys, "b", DEAD, count=2)

    assert reaper.reap() == 3
    assert next_to_run(fake_redis, keys, "a") == [b"a1"]
    assert next_to_run(fake_redis, keys, "b") == [b"b1", b"b2"]
    assert fake_redis.get(keys.lock("a")) == fake_redis.get(keys.lock("b")) == b"0"


def test_a_pool_that_left_no_heartbeat_at_all_is_reaped(
    reaper: Reaper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys
) -> None:
    fake_redis.lpush(keys.queue("a"), b"a1", b"a2")
    fetch(fake_redis, scripts, keys, "a", DEAD, count=2)  # found only through lock_info: it never beat

    assert reaper.reap() == 2

    assert next_to_run(fake_redis, keys, "a") == [b"a1", b"a2"]
    assert fake_redis.get(keys.lock("a")) == b"0"
    assert fake_redis.hgetall(keys.lock_info("a")) == {}


def test_a_registered_pool_whose_hash_is_gone_is_dead(
    reaper: Reaper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys
) -> None:
    fake_redis.lpush(keys.queue("a"), b"a1")
    fake_redis.sadd(keys.worker_pools, DEAD)
    fetch(fake_redis, scripts, keys, "a", DEAD, count=1)

    assert reaper.reap() == 1
    assert fake_redis.smembers(keys.worker_pools) == set()


@pytest.mark.parametrize("garbage", ["", "soon", "nan", "0x10", "1700000000,5", "inf", "1e999"])
def test_a_garbage_or_infinite_heartbeat_counts_as_dead(
    reaper: Reaper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys, garbage: str
) -> None:
    fake_redis.lpush(keys.queue("a"), b"a1")
    beat(fake_redis, keys, DEAD, garbage)
    fetch(fake_redis, scripts, keys, "a", DEAD, count=1)

    assert reaper.reap() == 1
    assert fake_redis.exists(keys.worker_pool(DEAD)) == 0


def test_the_reapers_own_pool_is_never_reaped(
    reaper: Reaper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys
) -> None:
    fake_redis.lpush(keys.queue("a"), b"a1", b"a2")
    beat(fake_redis, keys, SELF, NOW - 3600)  # its heartbeat loop may lag; it is running, so it is alive
    fetch(fake_redis, scripts, keys, "a", SELF, count=1)

    assert reaper.reap() == 0

    assert fake_redis.lrange(keys.in_progress("a", SELF), 0, -1) == [b"a1"]
    assert fake_redis.hgetall(keys.lock_info("a")) == {SELF.encode(): b"1"}
    assert fake_redis.sismember(keys.worker_pools, SELF)


def test_the_reapers_own_pool_is_never_reaped_before_its_first_beat(
    reaper: Reaper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys
) -> None:
    fake_redis.lpush(keys.queue("a"), b"a1")
    fetch(fake_redis, scripts, keys, "a", SELF, count=1)
    assert reaper.reap() == 0
    assert fake_redis.llen(keys.in_progress("a", SELF)) == 1


def test_nothing_changes_while_another_reaper_holds_the_lock(
    reaper: Reaper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys
) -> None:
    fake_redis.lpush(keys.queue("a"), b"a1")
    beat(fake_redis, keys, DEAD, NOW - 3600)
    fetch(fake_redis, scripts, keys, "a", DEAD, count=1)
    fake_redis.set(keys.reaper_lock, "another-pool:token", px=5000)
    before = {key: fake_redis.dump(key) for key in fake_redis.keys("*")}

    assert reaper.reap() == 0

    assert {key: fake_redis.dump(key) for key in fake_redis.keys("*")} == before
    assert fake_redis.get(keys.reaper_lock) == b"another-pool:token"


def test_the_lock_is_released_after_a_pass_so_the_next_pass_runs(
    reaper: Reaper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys
) -> None:
    assert reaper.reap() == 0
    assert fake_redis.exists(keys.reaper_lock) == 0

    fake_redis.lpush(keys.queue("a"), b"a1")
    beat(fake_redis, keys, DEAD, NOW - 3600)
    fetch(fake_redis, scripts, keys, "a", DEAD, count=1)
    assert reaper.reap() == 1
    assert fake_redis.exists(keys.reaper_lock) == 0


def test_the_lock_is_released_when_a_pass_fails(
    reaper: Reaper, fake_redis: fakeredis.FakeRedis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail() -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(reaper, "_reap_dead_pools", fail)
    with pytest.raises(RuntimeError):
        reaper.reap()
    assert fake_redis.exists(keys.reaper_lock) == 0


def test_a_reaper_whose_lock_expired_midway_does_not_release_the_next_holders_lock(
    reaper: Reaper, fake_redis: fakeredis.FakeRedis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    def slow_pass() -> int:
        fake_redis.set(keys.reaper_lock, "next-holder")  # ours expired and another reaper took it
        return 0

    monkeypatch.setattr(reaper, "_reap_dead_pools", slow_pass)
    reaper.reap()
    assert fake_redis.get(keys.reaper_lock) == b"next-holder"


def test_the_reaper_lock_expires_on_its_own(
    reaper: Reaper, fake_redis: fakeredis.FakeRedis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reaper that dies holding the lock blocks others for `lock_for` seconds at most."""
    ttls: list[int] = []

    def note_the_locks_ttl() -> int:
        ttls.append(fake_redis.pttl(keys.reaper_lock))
        return 0

    monkeypatch.setattr(reaper, "_reap_dead_pools", note_the_locks_ttl)
    reaper.reap()
    assert len(ttls) == 1 and 0 < ttls[0] <= 5000


def test_a_second_pass_finds_nothing_left_to_do(
    reaper: Reaper, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys
) -> None:
    fake_redis.lpush(keys.queue("a"), b"a1")
    beat(fake_redis, keys, DEAD, NOW - 3600)
    fetch(fake_redis, scripts, keys, "a", DEAD, count=1)
    assert reaper.reap() == 1
    assert reaper.reap() == 0
    assert next_to_run(fake_redis, keys, "a") == [b"a1"]


HEARTBEAT_INTERVAL = 5.0
STALL = 3 * int(DEAD_AFTER)
"""Longer than dead_after: nobody could beat meanwhile, so every heartbeat looks old once Redis answers again."""


@dataclass
class Watch:
    """A reaper whose own pool has beaten every heartbeat interval up to NOW, and the clock they share."""

    reaper: Reaper
    own_beats: OwnBeats
    clock: SteppedClock

    def beat_through(self, start: float, end: float) -> None:
        """The own pool beats every heartbeat interval from `start` to `end`; the clock ends at `end`."""
        at = start
        while at <= end:
            self.own_beats.record(at)
            at += HEARTBEAT_INTERVAL
        self.clock.now = end
        self.own_beats.record(end)


@pytest.fixture
def watch(fake_redis: fakeredis.FakeRedis, keys: Keys, scripts: Scripts, clock: SteppedClock) -> Watch:
    own_beats = OwnBeats(HEARTBEAT_INTERVAL, DEAD_AFTER)
    reaper = Reaper(
        fake_redis, keys, scripts, pool_id=SELF, dead_after=DEAD_AFTER, lock_for=5, clock=clock, own_beats=own_beats
    )
    watch = Watch(reaper, own_beats, clock)
    watch.beat_through(NOW - 600, NOW)
    return watch


def test_after_a_stall_longer_than_dead_after_live_pools_are_not_reaped(
    watch: Watch, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys
) -> None:
    """Redis stalled (or this process paused) for STALL seconds: the other pool's last beat is old only because
    nobody could beat. Its jobs stay with it, whether the reaper's heartbeat has caught up yet or not."""
    fake_redis.lpush(keys.queue("a"), b"a1", b"a2")
    beat(fake_redis, keys, LIVE, NOW)
    fetch(fake_redis, scripts, keys, "a", LIVE, count=1)
    watch.clock.now = NOW + STALL

    assert watch.reaper.reap() == 0, "reaped before its own heartbeat caught up"
    watch.own_beats.record(watch.clock.now)
    assert watch.reaper.reap() == 0, "reaped right after its own first beat since the stall"

    assert fake_redis.llen(keys.in_progress("a", LIVE)) == 1
    assert fake_redis.sismember(keys.worker_pools, LIVE)


def test_a_pool_silent_for_dead_after_of_watched_time_after_a_stall_is_reaped(
    watch: Watch, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys
) -> None:
    fake_redis.lpush(keys.queue("a"), b"a1", b"a2")
    beat(fake_redis, keys, DEAD, NOW)
    fetch(fake_redis, scripts, keys, "a", DEAD, count=1)
    resumed = NOW + STALL
    watch.beat_through(resumed, resumed + DEAD_AFTER)
    assert watch.reaper.reap() == 0, "reaped after only dead_after of watched silence (heartbeat_at is whole s)"

    watch.beat_through(resumed + DEAD_AFTER, resumed + DEAD_AFTER + 2)
    assert watch.reaper.reap() == 1


def test_a_holder_without_heartbeat_waits_for_watched_time_too(
    watch: Watch, fake_redis: fakeredis.FakeRedis, scripts: Scripts, keys: Keys
) -> None:
    """A pool whose hash a wrong verdict removed, or that died before its first beat: silent since ever, but the
    reaper has watched only since the stall ended."""
    fake_redis.lpush(keys.queue("a"), b"a1")
    fetch(fake_redis, scripts, keys, "a", DEAD, count=1)
    watch.beat_through(NOW + STALL, NOW + STALL)

    assert watch.reaper.reap() == 0

    watch.beat_through(NOW + STALL, NOW + STALL + DEAD_AFTER + 2)
    assert watch.reaper.reap() == 1
