"""Paging one-off jobs and cron ticks of the scheduled set apart, checked against filtering the whole set."""

from __future__ import annotations

import random

import fakeredis
import pytest

from workq.job import Job
from workq.periodic import CronSchedule
from workq.scheduled_split import page_of

ZSET = "ns:scheduled"
SIZE = 5


@pytest.mark.parametrize("seed", range(5))
def test_pages_match_filtering_the_whole_set_with_ties_and_lookalikes(
    fake_redis: fakeredis.FakeRedis, seed: int
) -> None:
    rng = random.Random(seed)
    schedule = CronSchedule("* * * * * *", "tick")
    ticks = {schedule.job_at(at).to_json(): at for at in range(1000, 1000 + rng.randint(0, 30))}
    one_off = {
        Job(name="email", id=f"{index:024x}", args={"id": "periodic:tick:x:1"} if index % 7 == 0 else {}).to_json(): (
            rng.randint(995, 1035)  # many share a score with a tick: ties go by the bytes
        )
        for index in range(rng.randint(0, 40))
    }
    fake_redis.zadd(ZSET, {**ticks, **one_off})
    ordered = [member for member, _ in fake_redis.zrange(ZSET, 0, -1, withscores=True)]
    expected_one_off = [member for member in ordered if member.decode() in one_off]
    expected_ticks = [member for member in ordered if member.decode() in ticks]
    for kind, expected in (("one_off", expected_one_off), ("cron", expected_ticks)):
        for page in range(1, len(expected) // SIZE + 3):
            entries, total = page_of(fake_redis, ZSET, page, SIZE, kind)
            assert total == len(expected)
            assert [member for member, _ in entries] == expected[(page - 1) * SIZE : page * SIZE], (kind, page)
