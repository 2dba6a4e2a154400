"""The orphan sweeper: in-progress jobs no worker holds go back to their queue, but only when seen twice."""

from __future__ import annotations

from collections import Counter

import fakeredis

from support import fetch_args, one_fetched
from workq.handler import JobOptions
from workq.keys import Keys
from workq.orphans import OrphanSweeper
from workq.registration import Registration
from workq.scripts import Scripts

POOL = "pool0000pool0000pool0000"


def sweeper(
    fake_redis: fakeredis.FakeRedis,
    keys: Keys,
    held: Counter[bytes],
    options: JobOptions | None = None,
    held_leases: frozenset[bytes] = frozenset(),
) -> OrphanSweeper:
    registration = Registration.build(keys, POOL, "a", lambda job: None, options or JobOptions())
    return OrphanSweeper(
        fake_redis,
        keys,
        Scripts.register(fake_redis),
        pool_id=POOL,
        registrations=[registration],
        held=lambda: held,
        held_leases=lambda: set(held_leases),
        clock=lambda: 1_800_000_000,
    )


def strand(fake_redis: fakeredis.FakeRedis, keys: Keys, *payloads: bytes) -> None:
    """What a fetch whose reply was lost leaves behind: the job in progress, its counts taken."""
    for payload in payloads:
        fake_redis.lpush(keys.in_progress("a", POOL), payload)
        fake_redis.incr(keys.lock("a"))
        fake_redis.hincrby(keys.lock_info("a"), POOL, 1)


def test_a_job_no_worker_holds_goes_back_on_the_second_pass(fake_redis: fakeredis.FakeRedis) -> None:
    keys = Keys("ns")
    strand(fake_redis, keys, b"lost")
    sweep = sweeper(fake_redis, keys, Counter())
    assert sweep.sweep() == 0, "a fetch reply may still be on its way"
    assert sweep.sweep() == 1
    assert fake_redis.lrange(keys.queue("a"), 0, -1) == [b"lost"]
    assert fake_redis.llen(keys.in_progress("a", POOL)) == 0
    assert fake_redis.get(keys.lock("a")) == b"0" and fake_redis.hgetall(keys.lock_info("a")) == {}


def test_held_jobs_and_jobs_that_finish_between_passes_stay(fake_redis: fakeredis.FakeRedis) -> None:
    keys = Keys("ns")
    strand(fake_redis, keys, b"running", b"running", b"finishing")
    held = Counter({b"running": 1})
    sweep = sweeper(fake_redis, keys, held)
    sweep.sweep()
    fake_redis.lrem(keys.in_progress("a", POOL), 1, b"finishing")  # acked before the next pass
    assert sweep.sweep() == 1, "one copy of the identical bytes is held, the other is orphaned"
    assert fake_redis.lrange(keys.in_progress("a", POOL), 0, -1) == [b"running"]
    assert fake_redis.lrange(keys.queue("a"), 0, -1) == [b"running"]


def test_a_lost_fetch_of_a_job_with_a_timeout_leaves_no_lease_behind(fake_redis: fakeredis.FakeRedis) -> None:
    """Left behind, the lease would expire later and take the job from whichever run holds it then (this pool's
    next fetch of the same bytes, say): two runs at once."""
    keys = Keys("ns")
    options = JobOptions(timeout=30)
    registration = Registration.build(keys, POOL, "a", lambda job: None, options)
    scripts = Scripts.register(fake_redis)
    fake_redis.lpush(keys.queue("a"), b"job", b"job")
    now = 1_800_000_000
    for token in ("0123456789abcdef", "fedcba9876543210"):  # the second fetch's run is held by a worker
        assert one_fetched(scripts.fetch(keys=registration.fetch_keys(keys), args=fetch_args(POOL, now, token, [30])))
    held_lease = f"{POOL}:fedcba9876543210:job".encode()
    sweep = sweeper(fake_redis, keys, Counter({b"job": 1}), options, frozenset({held_lease}))

    assert sweep.sweep() == 0
    assert sweep.sweep() == 1

    assert fake_redis.zrange(keys.leases("a"), 0, -1) == [held_lease]
    assert fake_redis.lrange(keys.in_progress("a", POOL), 0, -1) == [b"job"]
