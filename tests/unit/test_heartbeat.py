"""Heartbeater and Observer on fakeredis with a stepped clock: the pool hash and worker hashes exactly as the
wire format lists them, what one flush writes, and what a failed flush keeps for the next one."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from typing import Any, cast

import fakeredis
import pytest
import redis
from redis import Redis

from support import SteppedClock
from workq.heartbeat import Heartbeater, Observer
from workq.job import Job
from workq.keys import Keys
from workq.periodic import CronSchedule

START = 1_700_000_000
POOL = "a1b2c3d4e5f6a1b2c3d4e5f6"
WORKER = "0123456789abcdef01234567"


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock(START + 0.75)


@pytest.fixture
def observer(fake_redis: fakeredis.FakeRedis, keys: Keys, clock: SteppedClock) -> Observer:
    return Observer(fake_redis, keys, clock)


def heartbeater(client: fakeredis.FakeRedis, keys: Keys, clock: SteppedClock, pool_id: str = POOL) -> Heartbeater:
    return Heartbeater(
        client,
        keys,
        pool_id=pool_id,
        max_concurrency={"send_email": 0, "cleanup": 1, "resize": 0},
        concurrency=3,
        worker_ids=["w3", "w1", "w2"],
        heartbeat_interval=5.0,
        dead_after=60.0,
        schedules=[CronSchedule("0 0,30 * * * *", "cleanup")],
        clock=clock,
    )


def hash_of(client: fakeredis.FakeRedis, key: str) -> dict[str, str]:
    stored = cast(dict[bytes, bytes], client.hgetall(key))
    return {field.decode(): value.decode() for field, value in stored.items()}


def job(job_id: str = "job1", args: dict[str, object] | None = None) -> Job:
    return Job(name="resize", id=job_id, enqueued_at=START - 60, args=args if args is not None else {"w": 640})


def set_connected(client: fakeredis.FakeRedis, connected: bool) -> None:
    client.connection_pool.connection_kwargs["server"].connected = connected


# --- Heartbeater ---------------------------------------------------------------------------------------------


def test_beat_registers_the_pool_and_writes_exactly_the_spec_fields(
    fake_redis: fakeredis.FakeRedis, keys: Keys, clock: SteppedClock
) -> None:
    beater = heartbeater(fake_redis, keys, clock)
    clock.now = START + 5.9
    beater.beat()

    assert fake_redis.smembers(keys.worker_pools) == {POOL.encode()}
    assert hash_of(fake_redis, keys.worker_pool(POOL)) == {
        "heartbeat_at": str(START + 5),
        "started_at": str(START + 5),
        "job_names": "cleanup,resize,send_email",
        "worker_ids": "w1,w2,w3",
        "concurrency": "3",
        "host": socket.gethostname(),
        "pid": str(os.getpid()),
        "heartbeat_interval": "5.0",
        "dead_after": "60.0",
        "periodic_jobs": '[["cleanup","0 0,30 * * * *"]]',
    }


def test_each_beat_moves_heartbeat_at_and_keeps_started_at(
    fake_redis: fakeredis.FakeRedis, keys: Keys, clock: SteppedClock
) -> None:
    beater = heartbeater(fake_redis, keys, clock)
    beater.beat()
    clock.now += 5
    beater.beat()
    pool_hash = hash_of(fake_redis, keys.worker_pool(POOL))
    assert (pool_hash["started_at"], pool_hash["heartbeat_at"]) == (str(START), str(START + 5))


def test_a_beat_after_a_reaper_removed_the_pool_registers_it_again(
    fake_redis: fakeredis.FakeRedis, keys: Keys, clock: SteppedClock
) -> None:
    beater = heartbeater(fake_redis, keys, clock)
    beater.beat()
    fake_redis.srem(keys.worker_pools, POOL)
    fake_redis.delete(keys.worker_pool(POOL))
    beater.beat()
    assert fake_redis.sismember(keys.worker_pools, POOL)
    assert hash_of(fake_redis, keys.worker_pool(POOL))["job_names"] == "cleanup,resize,send_email"


def test_remove_deletes_the_hash_and_the_set_entry_and_leaves_other_pools(
    fake_redis: fakeredis.FakeRedis, keys: Keys, clock: SteppedClock
) -> None:
    other = heartbeater(fake_redis, keys, clock, pool_id="other")
    other.beat()
    beater = heartbeater(fake_redis, keys, clock)
    beater.beat()

    beater.remove()

    assert fake_redis.exists(keys.worker_pool(POOL)) == 0
    assert fake_redis.smembers(keys.worker_pools) == {b"other"}
    assert fake_redis.exists(keys.worker_pool("other")) == 1


# --- Observer ------------------------------------------------------------------------------------------------


def test_a_started_job_is_written_on_flush_with_the_spec_fields(
    observer: Observer, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    observer.started(WORKER, job(args={"w": 640, "name": "é"}))
    assert fake_redis.exists(keys.worker(WORKER)) == 0, "nothing is written before flush()"

    observer.flush()

    fields = hash_of(fake_redis, keys.worker(WORKER))
    assert fields.keys() == {"job_name", "job_id", "started_at", "args", "attempt", "enqueued_at"}
    assert (fields["job_name"], fields["job_id"], fields["started_at"]) == ("resize", "job1", str(START))
    assert (fields["attempt"], fields["enqueued_at"]) == ("1", str(START - 60))
    assert json.loads(fields["args"]) == {"w": 640, "name": "é"}


def test_args_are_observed_as_gocraft_work_writes_them(
    observer: Observer, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    """Go's observer writes json.Marshal(args): sorted keys, no spaces, Go's floats and escapes."""
    observer.started(WORKER, job(args={"w": 640, "name": "é<", "r": 0.00001, "z": [1e-7, -0.0]}))
    observer.flush()
    assert hash_of(fake_redis, keys.worker(WORKER))["args"] == '{"name":"é\\u003c","r":0.00001,"w":640,"z":[1e-7,-0]}'


@pytest.mark.parametrize("args", [{}, None])
def test_a_job_without_args_is_observed_with_empty_args(
    observer: Observer, fake_redis: fakeredis.FakeRedis, keys: Keys, args: dict[str, object] | None
) -> None:
    observer.started(WORKER, Job(name="resize", id="job1", enqueued_at=START, args=args))  # type: ignore[arg-type]
    observer.flush()
    assert hash_of(fake_redis, keys.worker(WORKER))["args"] == ""


def test_a_checkin_adds_its_message_and_time_and_keeps_the_start(
    observer: Observer, fake_redis: fakeredis.FakeRedis, keys: Keys, clock: SteppedClock
) -> None:
    running = job()
    observer.started(WORKER, running)
    observer.flush()
    clock.now += 7
    observer.checkin(WORKER, running, "40% resized")
    observer.flush()

    fields = hash_of(fake_redis, keys.worker(WORKER))
    assert fields["checkin"] == "40% resized"
    assert fields["checkin_at"] == str(START + 7)
    assert (fields["job_id"], fields["started_at"]) == ("job1", str(START))
    assert json.loads(fields["args"]) == {"w": 640}


def test_start_and_checkin_within_one_flush_are_written_together(
    observer: Observer, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    running = job()
    observer.started(WORKER, running)
    observer.checkin(WORKER, running, "first")
    observer.checkin(WORKER, running, "second")
    observer.flush()
    fields = hash_of(fake_redis, keys.worker(WORKER))
    assert (fields["started_at"], fields["checkin"]) == (str(START), "second")


def test_a_job_started_and_finished_within_one_flush_writes_nothing(
    observer: Observer, fake_redis: fakeredis.FakeRedis
) -> None:
    observer.started(WORKER, job())
    observer.done(WORKER)
    observer.flush()
    assert fake_redis.keys("*") == []


def test_done_after_a_flushed_start_deletes_the_worker_hash(
    observer: Observer, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    observer.started(WORKER, job())
    observer.flush()
    observer.done(WORKER)
    observer.flush()
    assert fake_redis.exists(keys.worker(WORKER)) == 0


def test_the_next_job_does_not_keep_the_previous_jobs_checkin(
    observer: Observer, fake_redis: fakeredis.FakeRedis, keys: Keys, clock: SteppedClock
) -> None:
    first = job("job1")
    observer.started(WORKER, first)
    observer.checkin(WORKER, first, "almost done")
    observer.flush()
    clock.now += 3
    observer.done(WORKER)
    observer.started(WORKER, job("job2", args={}))
    observer.flush()

    assert hash_of(fake_redis, keys.worker(WORKER)) == {
        "job_name": "resize",
        "job_id": "job2",
        "started_at": str(START + 3),
        "args": "",
        "attempt": "1",
        "enqueued_at": str(START - 60),
    }


def test_workers_are_written_independently(observer: Observer, fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    observer.started("w1", job("job1"))
    observer.started("w2", job("job2"))
    observer.flush()
    observer.done("w1")
    observer.flush()
    assert fake_redis.exists(keys.worker("w1")) == 0
    assert hash_of(fake_redis, keys.worker("w2"))["job_id"] == "job2"


def test_worker_hashes_expire_after_a_day_and_a_checkin_renews_it(
    observer: Observer, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    running = job()
    observer.started(WORKER, running)
    observer.flush()
    assert 86390 <= fake_redis.ttl(keys.worker(WORKER)) <= 86400
    fake_redis.expire(keys.worker(WORKER), 10)
    observer.checkin(WORKER, running, "still going")
    observer.flush()
    assert 86390 <= fake_redis.ttl(keys.worker(WORKER)) <= 86400


def test_a_flush_with_nothing_new_does_not_touch_redis(observer: Observer, fake_redis: fakeredis.FakeRedis) -> None:
    set_connected(fake_redis, False)
    observer.flush()  # would raise ConnectionError if it sent anything


def test_a_failed_flush_keeps_the_observation_for_the_next_flush(
    observer: Observer, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    observer.started(WORKER, job())
    set_connected(fake_redis, False)
    with pytest.raises(redis.ConnectionError):
        observer.flush()
    set_connected(fake_redis, True)
    observer.flush()
    assert hash_of(fake_redis, keys.worker(WORKER))["job_id"] == "job1"


def test_a_failed_flush_of_done_still_deletes_the_hash_later(
    observer: Observer, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    observer.started(WORKER, job())
    observer.flush()
    observer.done(WORKER)
    set_connected(fake_redis, False)
    with pytest.raises(redis.ConnectionError):
        observer.flush()
    set_connected(fake_redis, True)
    observer.flush()
    assert fake_redis.exists(keys.worker(WORKER)) == 0


def test_news_arriving_during_a_failed_flush_wins_over_the_kept_state(
    observer: Observer, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    observer.started(WORKER, job())
    set_connected(fake_redis, False)
    with pytest.raises(redis.ConnectionError):
        observer.flush()
    observer.done(WORKER)  # the job finished while Redis was away
    set_connected(fake_redis, True)
    observer.flush()
    assert fake_redis.keys("*") == []


class FlakyClient:
    """A client whose next pipeline, once armed, runs `meanwhile` and then fails, as a flush blocked on a dying
    connection does while worker threads keep reporting."""

    def __init__(self, client: fakeredis.FakeRedis) -> None:
        self._client = client
        self._meanwhile: Callable[[], None] | None = None

    def fail_next(self, meanwhile: Callable[[], None]) -> None:
        self._meanwhile = meanwhile

    def pipeline(self, transaction: bool = True) -> Any:
        pipe = self._client.pipeline(transaction=transaction)
        meanwhile, self._meanwhile = self._meanwhile, None
        if meanwhile is not None:

            def execute() -> None:
                meanwhile()
                raise redis.ConnectionError("Connection reset by peer")

            pipe.execute = execute  # type: ignore[method-assign, assignment]
        return pipe


def test_a_checkin_during_a_failing_flush_keeps_the_start_of_its_job(
    fake_redis: fakeredis.FakeRedis, keys: Keys, clock: SteppedClock
) -> None:
    flaky = FlakyClient(fake_redis)
    observer = Observer(cast(Redis, flaky), keys, clock)
    previous, current = job("job1", args={"w": 1}), job("job2", args={"w": 2})
    observer.started(WORKER, previous)
    observer.checkin(WORKER, previous, "old news")
    observer.flush()
    observer.done(WORKER)
    clock.now += 10
    observer.started(WORKER, current)

    def checkin_meanwhile() -> None:
        clock.now += 1
        observer.checkin(WORKER, current, "half way")

    flaky.fail_next(checkin_meanwhile)
    with pytest.raises(redis.ConnectionError):
        observer.flush()
    observer.flush()

    assert hash_of(fake_redis, keys.worker(WORKER)) == {
        "job_name": "resize",
        "job_id": "job2",
        "started_at": str(START + 10),
        "args": '{"w":2}',
        "attempt": "1",
        "enqueued_at": str(START - 60),
        "checkin": "half way",
        "checkin_at": str(START + 11),
    }


def test_each_beat_writes_known_jobs_and_caps_again(
    fake_redis: fakeredis.FakeRedis, keys: Keys, clock: SteppedClock
) -> None:
    """Redis may have restarted empty: the reaper needs known_jobs and fetch needs the caps."""
    beater = heartbeater(fake_redis, keys, clock)
    beater.beat()
    fake_redis.delete(keys.known_jobs, keys.max_concurrency("cleanup"))
    beater.beat()
    assert fake_redis.smembers(keys.known_jobs) == {b"send_email", b"cleanup", b"resize"}
    assert fake_redis.get(keys.max_concurrency("cleanup")) == b"1"


def test_a_started_cron_tick_is_recorded_as_its_schedules_last_run(
    fake_redis: fakeredis.FakeRedis, keys: Keys, observer: Observer, clock: SteppedClock
) -> None:
    tick = Job(name="cleanup", id="periodic:cleanup:0 0,30 * * * *:1700000100", enqueued_at=1_700_000_100)
    observer.started("w1", job())
    observer.started("w2", tick)
    observer.flush()
    assert hash_of(fake_redis, keys.periodic_last_run) == {
        "cleanup:0 0,30 * * * *": f'{{"fire_at":1700000100,"started_at":{int(clock.now)}}}'
    }


def test_a_cap_set_by_a_pool_started_later_is_kept_and_a_lost_cap_is_healed(
    fake_redis: fakeredis.FakeRedis, keys: Keys, clock: SteppedClock
) -> None:
    """gocraft/work: the last pool started sets the cap. A pool started after this one (here a Go pool writing 5)
    keeps its cap through this pool's beats; a cap lost with a Redis restart comes back with the next beat."""
    beater = heartbeater(fake_redis, keys, clock)
    fake_redis.set(keys.max_concurrency("cleanup"), 7)  # a pool that started earlier
    beater.beat()
    assert fake_redis.get(keys.max_concurrency("cleanup")) == b"1", "starting overrides an earlier pool's cap"
    fake_redis.set(keys.max_concurrency("cleanup"), 5)  # a pool started later
    beater.beat()
    beater.beat()
    assert fake_redis.get(keys.max_concurrency("cleanup")) == b"5"
    fake_redis.delete(keys.max_concurrency("cleanup"))
    beater.beat()
    assert fake_redis.get(keys.max_concurrency("cleanup")) == b"1"


def test_a_retried_jobs_observation_says_which_attempt_it_is_and_when_it_was_first_enqueued(
    observer: Observer, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    retried = Job(name="resize", id="r1", enqueued_at=START - 5, fails=2, extra={"first_enqueued_at": START - 900})
    observer.started(WORKER, retried)
    observer.flush()
    fields = hash_of(fake_redis, keys.worker(WORKER))
    assert (fields["attempt"], fields["enqueued_at"]) == ("3", str(START - 900))
