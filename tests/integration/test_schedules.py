"""Cron schedules on a real Redis: pools publish their specs, `Client.schedules()` lists them with next fire times
and last run, ticks are listed apart from one-off jobs, and the future ticks of a spec no live pool registers any
more are dropped after the grace period, never while a pool that registers it may be restarting."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import redis

from integration.pool_factory import PoolFactory
from support import SteppedClock, wait_until
from workq import Client, Enqueuer, Job
from workq.keys import Keys
from workq.scripts import Scripts
from workq.tick_pruner import UNREGISTERED_GRACE, TickPruner

EVERY_10S = "*/10 * * * * *"


def _noop(job: Job) -> None:
    pass


def test_schedules_lists_what_live_pools_registered(make_pool: PoolFactory, namespace: str, redis_url: str) -> None:
    pool = make_pool()
    pool.job("report", _noop)
    pool.job("tick", _noop)
    pool.periodically_enqueue(EVERY_10S, "report")
    pool.periodically_enqueue("* * * * * *", "tick")
    pool.start()
    client = Client(namespace, redis_url)
    wait_until(lambda: all(schedule.enqueued_until for schedule in client.schedules()), what="the first cron pass")
    schedules = {schedule.job_name: schedule for schedule in client.schedules()}
    assert set(schedules) == {"report", "tick"}
    report = schedules["report"]
    assert report.spec == EVERY_10S and report.pool_ids == [pool.pool_id] and report.registered
    now = time.time()
    assert len(report.next_fire_times) == 3
    assert now < report.next_fire_times[0] <= now + 10
    assert [b - a for a, b in zip(report.next_fire_times, report.next_fire_times[1:], strict=False)] == [10, 10]
    assert report.enqueued_until > now + 200, "the pool added the next four minutes of ticks"
    last = wait_until(lambda: client.schedules()[1].last_run, timeout=15, what="a tick of the 1 s schedule to run")
    assert last.fire_at <= last.started_at <= time.time() + 1


def test_scheduled_jobs_lists_ticks_apart_from_one_off_jobs(
    make_pool: PoolFactory, namespace: str, redis_url: str, redis_client: redis.Redis
) -> None:
    pool = make_pool()
    pool.job("report", _noop)
    pool.periodically_enqueue(EVERY_10S, "report")
    pool.start()
    wait_until(lambda: len(_tick_ids(redis_client, namespace)) >= 20, what="the first cron pass")
    enqueuer = Enqueuer(namespace, redis_url)
    one_off = [enqueuer.enqueue_in("email", 30 + index, {"n": index}) for index in range(25)]
    # A one-off job whose args hold a tick's id text is still a one-off job.
    tricky = enqueuer.enqueue_in("email", 3600, {"id": "periodic:report:x:1"})
    client = Client(namespace, redis_url)

    first, total = client.scheduled_jobs(1, kind="one_off")
    second, _ = client.scheduled_jobs(2, kind="one_off")
    assert total == 26
    assert [job.id for job in first + second] == [job.id for job in [*one_off, tricky]]
    ticks, tick_total = client.scheduled_jobs(1, kind="cron")
    assert 20 <= tick_total <= 25 and len(ticks) == 20
    assert all(job.id.startswith("periodic:report:") for job in ticks)
    assert [job.run_at for job in ticks] == sorted(job.run_at for job in ticks)
    _, everything = client.scheduled_jobs(1)
    assert everything == total + tick_total


def _tick_ids(redis_client: redis.Redis, namespace: str) -> list[str]:
    members = redis_client.zrange(f"{namespace}:scheduled", 0, -1)
    return [Job.from_json(member).id for member in members if b'"periodic:' in member]


def test_future_ticks_of_a_removed_spec_are_dropped_after_the_grace_period(
    make_pool: PoolFactory, namespace: str, redis_url: str, redis_client: redis.Redis
) -> None:
    old = make_pool()
    old.job("report", _noop)
    old.periodically_enqueue(EVERY_10S, "report")
    old.start()
    wait_until(lambda: len(_tick_ids(redis_client, namespace)) >= 20, what="the first cron pass")
    old.stop()
    keep = Enqueuer(namespace, redis_url).enqueue_in("report", 120)  # a one-off job of the same name
    new = make_pool()  # the deploy without the spec: a pool that registers no schedule
    new.job("report", _noop)
    new.start()

    now = redis_client.time()[0]
    clock = SteppedClock(now)
    pruner = TickPruner(redis_client, Keys(namespace), Scripts.register(redis_client), clock)
    assert pruner.prune() == 0, "the first pass only notes the schedule unregistered"
    clock.now = now + UNREGISTERED_GRACE - 1
    assert pruner.prune() == 0, "within the grace period nothing is dropped"
    clock.now = now + UNREGISTERED_GRACE
    dropped = pruner.prune()
    left = _tick_ids(redis_client, namespace)
    assert dropped >= 10
    assert all(int(tick.rsplit(":", 1)[1]) <= clock.now for tick in left), "every future tick is gone"
    assert [job.id for job, _ in _scheduled(redis_client, namespace) if job.id == keep.id] == [keep.id]
    mark = int(redis_client.hget(f"{namespace}:periodic_enqueued_until", f"report:{EVERY_10S}") or 0)
    assert mark == int(clock.now), "lowered to now: a pool registering it again adds every tick still ahead"
    assert Client(namespace, redis_url, clock=clock).schedules() == [], "gone: no pool, no tick ahead"


def test_ticks_are_kept_while_a_pool_registers_the_spec_or_may_be_restarting(
    make_pool: PoolFactory, namespace: str, redis_client: redis.Redis
) -> None:
    first = make_pool()
    first.job("report", _noop)
    first.periodically_enqueue(EVERY_10S, "report")
    first.start()
    ticks = wait_until(lambda: _tick_ids(redis_client, namespace), what="the first cron pass")
    now = redis_client.time()[0]
    clock = SteppedClock(now)
    pruner = TickPruner(redis_client, Keys(namespace), Scripts.register(redis_client), clock)
    pruner.prune()
    clock.now = now + 2 * UNREGISTERED_GRACE
    assert pruner.prune() == 0, "a live pool registers it"

    first.stop()  # a restart: stopped, then back within the grace period
    clock.now += 1
    assert pruner.prune() == 0
    second = make_pool()
    second.job("report", _noop)
    second.periodically_enqueue(EVERY_10S, "report")
    second.start()
    clock.now += UNREGISTERED_GRACE
    assert pruner.prune() == 0
    ahead = {tick for tick in ticks if int(tick.rsplit(":", 1)[1]) > time.time() + 1}
    assert ahead and ahead <= set(_tick_ids(redis_client, namespace)), "no tick ahead was dropped"


def test_nothing_is_dropped_while_a_pool_that_does_not_publish_its_specs_is_registered(
    make_pool: PoolFactory, namespace: str, redis_client: redis.Redis
) -> None:
    old = make_pool()
    old.job("report", _noop)
    old.periodically_enqueue(EVERY_10S, "report")
    old.start()
    wait_until(lambda: _tick_ids(redis_client, namespace), what="the first cron pass")
    old.stop()
    # A gocraft/work pool: its heartbeat says nothing of its schedules.
    redis_client.sadd(f"{namespace}:worker_pools", "go-pool")
    redis_client.hset(
        f"{namespace}:worker_pools:go-pool", mapping={"heartbeat_at": int(time.time()), "job_names": "report"}
    )
    before = _tick_ids(redis_client, namespace)
    now = redis_client.time()[0]
    clock = SteppedClock(now)
    pruner = TickPruner(redis_client, Keys(namespace), Scripts.register(redis_client), clock)
    pruner.prune()
    clock.now = now + 2 * UNREGISTERED_GRACE
    assert pruner.prune() == 0
    assert _tick_ids(redis_client, namespace) == before


def _scheduled(redis_client: redis.Redis, namespace: str) -> list[tuple[Job, float]]:
    return [(Job.from_json(m), s) for m, s in redis_client.zrange(f"{namespace}:scheduled", 0, -1, withscores=True)]


def test_ticks_of_a_spec_in_a_time_zone_are_found_and_dropped(
    make_pool: PoolFactory, namespace: str, redis_url: str, redis_client: redis.Redis
) -> None:
    """Fire times of a zoned spec differ from UTC's: the schedule says its zone and the pruner drops its ticks."""
    hour = datetime.now(ZoneInfo("America/New_York")).hour
    spec = f"*/10 * {hour},{(hour + 1) % 24} * * *"  # every 10 s for two hours of New York's clock
    old = make_pool()
    old.job("report", _noop)
    old.periodically_enqueue(spec, "report", timezone="America/New_York")
    old.start()
    wait_until(lambda: len(_tick_ids(redis_client, namespace)) >= 20, what="the first cron pass")
    [schedule] = Client(namespace, redis_url).schedules()
    assert (schedule.spec, schedule.timezone) == (spec, "America/New_York")
    assert schedule.next_fire_times[0] <= time.time() + 10
    old.stop()
    now = redis_client.time()[0]
    clock = SteppedClock(now)
    pruner = TickPruner(redis_client, Keys(namespace), Scripts.register(redis_client), clock)
    pruner.prune()
    clock.now = now + UNREGISTERED_GRACE
    assert pruner.prune() >= 10
    assert all(int(tick.rsplit(":", 1)[1]) <= clock.now for tick in _tick_ids(redis_client, namespace))
