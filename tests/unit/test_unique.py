"""Unique locks on fakeredis: which lock a job's run releases, for jobs of every gocraft/work version."""

from __future__ import annotations

import fakeredis
import pytest

from workq import unique
from workq.job import Job
from workq.keys import Keys
from workq.scripts import Scripts

ARGS = {"ratio": 0.00001, "sep": "a\bb\fc"}


@pytest.fixture
def keys() -> Keys:
    return Keys("ns")


def v051_job(args: dict[str, object]) -> Job:
    """A unique job as gocraft/work v0.5.1 enqueues it: `unique` but no `unique_key`."""
    return Job.from_json(Job(name="report", id="j1", enqueued_at=1, args=args, unique=True).to_json())


def test_a_v051_jobs_lock_is_derived_from_its_args_and_released(fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    lock = 'ns:unique:report:{"ratio":0.00001,"sep":"a\\bb\\fc"}\n'
    fake_redis.set(lock, "1")
    claim = unique.claim(fake_redis, Scripts.register(fake_redis), keys, v051_job(ARGS))
    assert claim.released and not fake_redis.exists(lock)


def test_a_v051_lock_taken_by_go_before_1_22_is_released_too(fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    """Go 1.21 and earlier wrote U+0008 and U+000C as \\u0008 and \\u000c; the lock was not released (24 h)."""
    lock = 'ns:unique:report:{"ratio":0.00001,"sep":"a\\u0008b\\u000cc"}\n'
    fake_redis.set(lock, "1")
    claim = unique.claim(fake_redis, Scripts.register(fake_redis), keys, v051_job(ARGS))
    assert claim.released and not fake_redis.exists(lock)


def test_a_job_naming_its_unique_key_releases_only_that_key(fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    legacy = 'ns:unique:report:{"ratio":0.00001,"sep":"a\\u0008b\\u000cc"}\n'
    fake_redis.set(legacy, "1")
    job = v051_job(ARGS)
    job.unique_key = keys.unique_for("report", ARGS)
    claim = unique.claim(fake_redis, Scripts.register(fake_redis), keys, job)
    assert not claim.released and fake_redis.exists(legacy)
