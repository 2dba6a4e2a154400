"""Requeuer: due retry/scheduled jobs back to their queues with `t` = now; the rest stays; garbage goes dead."""

from __future__ import annotations

import json
from typing import Any, cast

import fakeredis
import pytest

from workq.job import Job
from workq.keys import Keys
from workq.requeuer import BATCH, Requeuer
from workq.scripts import Scripts

NOW = 1_700_000_000


@pytest.fixture
def requeuer(fake_redis: fakeredis.FakeRedis, keys: Keys) -> Requeuer:
    return Requeuer(fake_redis, keys, Scripts.register(fake_redis), clock=lambda: NOW + 0.9)


def job_json(name: str, job_id: str, **fields: object) -> str:
    return Job(name=name, id=job_id, enqueued_at=1, args={"n": 1}, **fields).to_json()  # type: ignore[arg-type]


def queued(client: fakeredis.FakeRedis, keys: Keys, name: str) -> list[dict[str, object]]:
    return [json.loads(raw) for raw in client.lrange(keys.queue(name), 0, -1)]


@pytest.mark.parametrize("zset", ["retry", "scheduled"])
def test_due_jobs_move_to_their_queue_with_t_reset_to_now_and_the_original_t_kept(
    requeuer: Requeuer, fake_redis: fakeredis.FakeRedis, keys: Keys, zset: str
) -> None:
    fake_redis.zadd(getattr(keys, zset), {job_json("x", "due"): NOW})
    assert requeuer.requeue_due() == 1
    assert fake_redis.zcard(getattr(keys, zset)) == 0
    assert queued(fake_redis, keys, "x") == [
        {"name": "x", "id": "due", "t": NOW, "args": {"n": 1}, "first_enqueued_at": 1}
    ]


def test_a_job_requeued_again_keeps_its_first_enqueue_time_and_fails(
    requeuer: Requeuer, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    again = Job(name="x", id="again", enqueued_at=NOW - 30, fails=2, extra={"first_enqueued_at": 5}).to_json()
    fake_redis.zadd(keys.retry, {again: NOW})
    requeuer.requeue_due()
    [job] = queued(fake_redis, keys, "x")
    assert (job["t"], job["first_enqueued_at"], job["fails"]) == (NOW, 5, 2)
    assert Job.from_json(json.dumps(job)).first_enqueued_at == 5


@pytest.mark.parametrize("zset", ["retry", "scheduled"])
def test_jobs_not_yet_due_stay(requeuer: Requeuer, fake_redis: fakeredis.FakeRedis, keys: Keys, zset: str) -> None:
    member = job_json("x", "later")
    fake_redis.zadd(getattr(keys, zset), {member: NOW + 1})
    assert requeuer.requeue_due() == 0
    assert fake_redis.zscore(getattr(keys, zset), member) == NOW + 1
    assert fake_redis.exists(keys.queue("x")) == 0


def test_retry_jobs_keep_their_failure_record(requeuer: Requeuer, fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    fake_redis.zadd(keys.retry, {job_json("x", "r", fails=2, last_err="boom", failed_at=5): NOW - 10})
    requeuer.requeue_due()
    assert queued(fake_redis, keys, "x") == [
        {
            "name": "x",
            "id": "r",
            "t": NOW,
            "args": {"n": 1},
            "fails": 2,
            "err": "boom",
            "failed_at": 5,
            "first_enqueued_at": 1,
        }
    ]


def test_only_due_members_move_from_a_mixed_set(
    requeuer: Requeuer, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    fake_redis.zadd(
        keys.scheduled, {job_json("x", "a"): NOW - 5, job_json("x", "b"): NOW, job_json("x", "c"): NOW + 60}
    )
    assert requeuer.requeue_due() == 2
    assert sorted(job["id"] for job in queued(fake_redis, keys, "x")) == ["a", "b"]  # type: ignore[type-var]
    assert fake_redis.zcard(keys.scheduled) == 1


def test_due_jobs_join_the_back_of_the_queue(requeuer: Requeuer, fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    fake_redis.lpush(keys.queue("x"), job_json("x", "waiting"))
    fake_redis.zadd(keys.scheduled, {job_json("x", "due"): NOW})
    requeuer.requeue_due()
    assert json.loads(fake_redis.rpop(keys.queue("x")))["id"] == "waiting"  # type: ignore[arg-type]


def test_names_no_pool_registers_still_go_to_their_own_queue(
    requeuer: Requeuer, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    fake_redis.zadd(keys.retry, {job_json("go_only_job", "g"): NOW, job_json("other", "o"): NOW})
    assert requeuer.requeue_due() == 2
    assert [job["id"] for job in queued(fake_redis, keys, "go_only_job")] == ["g"]
    assert [job["id"] for job in queued(fake_redis, keys, "other")] == ["o"]
    assert fake_redis.zcard(keys.dead) == 0


def test_cjson_reencoded_jobs_are_requeued_in_go_form(
    requeuer: Requeuer, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    fake_redis.zadd(keys.scheduled, {r'{"args":{"u":"a\/b"},"t":1.0,"id":"c","name":"x"}': NOW})
    requeuer.requeue_due()
    assert fake_redis.lrange(keys.queue("x"), 0, -1) == [
        f'{{"name":"x","id":"c","t":{NOW},"args":{{"u":"a/b"}},"first_enqueued_at":1}}'.encode()
    ]


def test_unknown_fields_survive_a_requeue(requeuer: Requeuer, fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    fake_redis.zadd(keys.scheduled, {'{"name":"x","id":"e","t":1,"args":null,"trace":"abc"}': NOW})
    requeuer.requeue_due()
    assert queued(fake_redis, keys, "x")[0]["trace"] == "abc"


@pytest.mark.parametrize(
    "member",
    ["{not json", '["a list"]', '{"id":"no-name"}', '{"name":"bad:name","id":"i"}', '{"name":"x","args":[1]}'],
)
def test_malformed_members_go_to_dead_with_a_reason(
    requeuer: Requeuer, fake_redis: fakeredis.FakeRedis, keys: Keys, member: str
) -> None:
    fake_redis.zadd(keys.scheduled, {member: NOW - 1})
    assert requeuer.requeue_due() == 1
    assert fake_redis.zcard(keys.scheduled) == 0
    [(raw, died_at)] = cast(list[tuple[bytes, float]], fake_redis.zrange(keys.dead, 0, -1, withscores=True))
    dead = json.loads(raw)
    assert died_at == NOW
    assert dead["err"].startswith(f"malformed job in {keys.scheduled}")
    assert dead["payload"] == member


def test_a_malformed_member_does_not_hold_up_good_ones(
    requeuer: Requeuer, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    fake_redis.zadd(keys.retry, {"garbage": NOW - 2, job_json("x", "good"): NOW - 1})
    assert requeuer.requeue_due() == 2
    assert [job["id"] for job in queued(fake_redis, keys, "x")] == ["good"]
    assert fake_redis.zcard(keys.dead) == 1


@pytest.mark.parametrize(
    "member", ['{"name":"x","id":"i","t":1e400,"args":null}', '{"name":"x","id":"i","t":1,"args":{"v":1e400}}']
)
def test_out_of_range_numbers_go_dead_without_stalling_the_set(
    requeuer: Requeuer, fake_redis: fakeredis.FakeRedis, keys: Keys, member: str
) -> None:
    fake_redis.zadd(keys.scheduled, {member: NOW - 2, job_json("x", "good"): NOW - 1})
    requeuer.requeue_due()
    assert [job["id"] for job in queued(fake_redis, keys, "x")] == ["good"]
    assert fake_redis.zcard(keys.dead) == 1


def test_more_than_one_batch_is_moved_in_one_call(
    requeuer: Requeuer, fake_redis: fakeredis.FakeRedis, keys: Keys
) -> None:
    count = BATCH * 2 + 5
    fake_redis.zadd(keys.scheduled, {job_json("x", f"j{n}"): NOW - n for n in range(count)})
    assert requeuer.requeue_due() == count
    assert fake_redis.llen(keys.queue("x")) == count
    assert fake_redis.zcard(keys.scheduled) == 0


def test_nothing_due_moves_nothing(requeuer: Requeuer) -> None:
    assert requeuer.requeue_due() == 0


class RivalFirst:
    """A client whose first read of due members lets a rival requeuer move them before the script runs."""

    def __init__(self, client: fakeredis.FakeRedis, rival: Requeuer) -> None:
        self._client = client
        self._rival = rival
        self.raced = False

    def zrangebyscore(self, *args: Any, **kwargs: Any) -> object:
        members = self._client.zrangebyscore(*args, **kwargs)
        if members and not self.raced:
            self.raced = True
            self._rival.requeue_due()
        return members


def test_concurrent_requeuers_move_each_job_exactly_once(fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    scripts = Scripts.register(fake_redis)
    rival = Requeuer(fake_redis, keys, scripts, clock=lambda: NOW)
    racing = RivalFirst(fake_redis, rival)
    slow = Requeuer(racing, keys, scripts, clock=lambda: NOW)  # type: ignore[arg-type]
    fake_redis.zadd(keys.retry, {job_json("x", f"j{n}"): NOW for n in range(3)})
    assert slow.requeue_due() == 0
    assert racing.raced
    assert fake_redis.llen(keys.queue("x")) == 3
