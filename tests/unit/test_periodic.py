"""Cron schedules: UTC fire times, byte-identical tick jobs, and each fire time added to `scheduled` once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import cast

import fakeredis
import pytest

from workq.keys import Keys
from workq.periodic import LOOKAHEAD, CronSchedule, PeriodicEnqueuer, check_cron_spec
from workq.scripts import Scripts

NOW = 1_700_000_000  # 2023-11-14 22:13:20 UTC


def periodic_enqueuer(
    client: fakeredis.FakeRedis, keys: Keys, schedules: list[CronSchedule], now: float
) -> PeriodicEnqueuer:
    return PeriodicEnqueuer(client, keys, Scripts.register(client), schedules, clock=lambda: now)


@pytest.fixture
def far_timezone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_six_fields_have_seconds_first() -> None:
    assert CronSchedule("*/10 * * * * *", "x").fire_times(NOW, NOW + 30) == [NOW + 10, NOW + 20, NOW + 30]


def test_five_fields_are_standard_minutes_first() -> None:
    assert CronSchedule("*/15 * * * *", "x").fire_times(NOW, NOW + 3600) == [
        1700000100,
        1700001000,
        1700001900,
        1700002800,
    ]


def test_descriptors_are_accepted() -> None:
    assert CronSchedule("@hourly", "x").fire_times(NOW, NOW + 3600) == [1700002800]


def test_fire_times_exclude_the_start_and_include_the_end() -> None:
    assert CronSchedule("0 * * * * *", "x").fire_times(1700000040, 1700000100) == [1700000100]


def test_fire_times_are_in_utc_whatever_the_host_timezone(far_timezone: None) -> None:
    assert CronSchedule("0 0 * * *", "x").fire_times(NOW, NOW + 86400) == [1700006400]


def test_a_timezone_gives_local_fire_times_across_a_dst_change(far_timezone: None) -> None:
    """09:30 in New York is 14:30 UTC until clocks go forward on 2026-03-08, 13:30 UTC after (host zone ignored)."""
    march_6 = 1772755200  # 2026-03-06 00:00 UTC
    times = CronSchedule("0 30 9 * * *", "x", "America/New_York").fire_times(march_6, march_6 + 4 * 86400)
    assert [t - march_6 for t in times] == [
        14 * 3600 + 1800,
        86400 + 14 * 3600 + 1800,
        2 * 86400 + 13 * 3600 + 1800,
        3 * 86400 + 13 * 3600 + 1800,
    ]


@pytest.mark.parametrize("timezone", ["Mars/Olympus_Mons", "EST5EDT/../../etc", ""])
def test_an_unknown_timezone_is_a_value_error(timezone: str) -> None:
    with pytest.raises(ValueError, match="unknown timezone"):
        CronSchedule("@hourly", "x", timezone)


@pytest.mark.parametrize("spec", ["* * * *", "* * * * * * *", "", "61 * * * *", "@sometimes", "@hourly daily"])
def test_invalid_specs_are_value_errors(spec: str) -> None:
    with pytest.raises(ValueError, match="cron spec"):
        check_cron_spec(spec)


def test_a_non_string_spec_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        check_cron_spec(5)  # type: ignore[arg-type]


def test_a_schedule_checks_its_job_name() -> None:
    with pytest.raises(ValueError):
        CronSchedule("@hourly", "bad:name")


def test_tick_jobs_are_byte_identical_to_gocrafts() -> None:
    job = CronSchedule("0 */5 * * * *", "cleanup").job_at(1700000100)
    assert (
        job.to_json()
        == '{"name":"cleanup","id":"periodic:cleanup:0 */5 * * * *:1700000100","t":1700000100,"args":null}'
    )


def test_enqueue_coming_adds_the_next_four_minutes(fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    schedule = CronSchedule("0 * * * * *", "tick")
    added = periodic_enqueuer(fake_redis, keys, [schedule], NOW).enqueue_coming()
    expected = schedule.fire_times(NOW, NOW + LOOKAHEAD)
    assert added == len(expected) == 4
    assert fake_redis.zrange(keys.scheduled, 0, -1, withscores=True) == [
        (schedule.job_at(fire_at).to_json().encode(), fire_at) for fire_at in expected
    ]
    assert fake_redis.get(keys.last_periodic_enqueue) == str(NOW).encode()


def test_several_schedules_are_added_in_one_pass(fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    schedules = [CronSchedule("0 * * * * *", "a"), CronSchedule("@hourly", "b")]
    periodic_enqueuer(fake_redis, keys, schedules, NOW).enqueue_coming()
    names = {json.loads(member)["name"] for member in cast(list[bytes], fake_redis.zrange(keys.scheduled, 0, -1))}
    assert names == {"a"}  # @hourly has no fire time in the next four minutes
    periodic_enqueuer(fake_redis, keys, schedules, 1700002700).enqueue_coming()
    names = {json.loads(member)["name"] for member in cast(list[bytes], fake_redis.zrange(keys.scheduled, 0, -1))}
    assert names == {"a", "b"}


def test_a_second_pass_adds_only_new_fire_times(fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    schedule = [CronSchedule("0 * * * * *", "tick")]
    periodic_enqueuer(fake_redis, keys, schedule, NOW).enqueue_coming()
    assert periodic_enqueuer(fake_redis, keys, schedule, NOW + 120).enqueue_coming() == 2
    assert fake_redis.zcard(keys.scheduled) == 6


def test_many_pools_add_each_fire_time_once(fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    schedule = [CronSchedule("0 * * * * *", "tick")]
    counts = [periodic_enqueuer(fake_redis, keys, schedule, NOW + skew).enqueue_coming() for skew in (0, 0, 3)]
    assert counts == [4, 0, 0]
    assert fake_redis.zcard(keys.scheduled) == 4


def test_a_fire_time_already_moved_out_is_never_added_again(fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    schedule = [CronSchedule("0 * * * * *", "tick")]
    periodic_enqueuer(fake_redis, keys, schedule, NOW).enqueue_coming()
    fake_redis.delete(keys.scheduled)  # the requeuer moved every tick to its queue
    lagging_host = periodic_enqueuer(fake_redis, keys, schedule, NOW - 90)
    assert lagging_host.enqueue_coming() == 0
    assert fake_redis.zcard(keys.scheduled) == 0


def test_no_schedule_due_still_records_the_pass(fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    assert periodic_enqueuer(fake_redis, keys, [CronSchedule("@yearly", "y")], NOW).enqueue_coming() == 0
    assert fake_redis.get(keys.last_periodic_enqueue) == str(NOW).encode()
