"""Enqueuer: exact bytes on the right keys, FIFO bulk enqueue, scheduling, and validation before Redis."""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import cast

import fakeredis
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from workq.enqueue_commands import EnqueueCommands
from workq.enqueuer import Enqueuer
from workq.errors import ConnectionFailed, WorkqError
from workq.job import Job, ScheduledJob
from workq.scripts import ScriptText
from workq.send_rounds import ScriptCall

NOW = 1_700_000_000.0
HEX_24 = re.compile(r"[0-9a-f]{24}")


def popped(client: fakeredis.FakeRedis, queue: str) -> bytes:
    return cast(bytes, client.rpop(queue))


@pytest.fixture
def enqueuer(fake_redis: fakeredis.FakeRedis, namespace: str) -> Enqueuer:
    return Enqueuer(namespace, fake_redis, clock=lambda: NOW)


@pytest.fixture
def offline_enqueuer() -> Enqueuer:
    """An Enqueuer whose every Redis command fails: a TypeError/ValueError proves Redis was never reached."""
    server = fakeredis.FakeServer()
    server.connected = False
    return Enqueuer("ns", fakeredis.FakeRedis(server=server), clock=lambda: NOW)


def test_enqueue_pushes_exactly_the_job_json(
    enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    job = enqueuer.enqueue("send_email", {"address": "a@b.c"})
    assert fake_redis.lrange(f"{namespace}:jobs:send_email", 0, -1) == [job.to_json().encode()]
    assert json.loads(job.to_json()) == {
        "name": "send_email",
        "id": job.id,
        "t": 1700000000,
        "args": {"address": "a@b.c"},
    }


def test_enqueue_records_the_name_in_known_jobs(
    enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    enqueuer.enqueue("send_email")
    assert fake_redis.smembers(f"{namespace}:known_jobs") == {b"send_email"}


def test_enqueue_returns_the_job_it_stored(enqueuer: Enqueuer) -> None:
    job = enqueuer.enqueue("send_email", {"n": 1})
    assert isinstance(job, Job)
    assert HEX_24.fullmatch(job.id)
    assert job.enqueued_at == 1700000000 and type(job.enqueued_at) is int
    assert (job.name, job.args) == ("send_email", {"n": 1})


def test_enqueue_truncates_a_fractional_clock_to_whole_seconds(fake_redis: fakeredis.FakeRedis, namespace: str) -> None:
    job = Enqueuer(namespace, fake_redis, clock=lambda: 1_700_000_000.9).enqueue("x")
    assert b'"t":1700000000,' in popped(fake_redis, f"{namespace}:jobs:x")
    assert job.enqueued_at == 1700000000


def test_enqueue_without_args_writes_null(enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis, namespace: str) -> None:
    enqueuer.enqueue("x")
    assert popped(fake_redis, f"{namespace}:jobs:x").endswith(b',"args":null}')


def test_enqueue_with_empty_args_writes_an_empty_object(
    enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    enqueuer.enqueue("x", {})
    assert popped(fake_redis, f"{namespace}:jobs:x").endswith(b',"args":{}}')


def test_enqueue_writes_args_the_go_way(enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis, namespace: str) -> None:
    enqueuer.enqueue("x", {"b": 2.0, "a": "<é>"})
    assert popped(fake_redis, f"{namespace}:jobs:x").endswith('"args":{"a":"\\u003cé\\u003e","b":2}}'.encode())


def test_every_enqueue_gets_a_new_id(enqueuer: Enqueuer) -> None:
    assert enqueuer.enqueue("x").id != enqueuer.enqueue("x").id


def test_jobs_come_out_in_enqueue_order(enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis, namespace: str) -> None:
    jobs = [enqueuer.enqueue("x", {"n": n}) for n in range(3)]
    popped = [fake_redis.rpop(f"{namespace}:jobs:x") for _ in jobs]
    assert popped == [job.to_json().encode() for job in jobs]


# --- enqueue_many ------------------------------------------------------------------------------------------


def test_enqueue_many_preserves_fifo_order(enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis, namespace: str) -> None:
    jobs = enqueuer.enqueue_many("x", [{"n": n} for n in range(5)])
    assert [job.args["n"] for job in jobs] == [0, 1, 2, 3, 4]
    popped = [fake_redis.rpop(f"{namespace}:jobs:x") for _ in jobs]
    assert popped == [job.to_json().encode() for job in jobs]


def test_enqueue_many_keeps_order_across_chunks(
    enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    jobs = enqueuer.enqueue_many("x", ({"n": n} for n in range(2500)))
    assert len(jobs) == 2500
    stored = fake_redis.lrange(f"{namespace}:jobs:x", 0, -1)
    assert stored[::-1] == [job.to_json().encode() for job in jobs]
    assert fake_redis.smembers(f"{namespace}:known_jobs") == {b"x"}


def test_enqueue_many_of_nothing_returns_nothing_and_writes_nothing(
    enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis
) -> None:
    assert enqueuer.enqueue_many("x", []) == []
    assert fake_redis.dbsize() == 0


def test_enqueue_many_gives_each_job_its_own_id_and_null_for_none(enqueuer: Enqueuer) -> None:
    jobs = enqueuer.enqueue_many("x", [None, {"a": 1}])
    assert len({job.id for job in jobs}) == 2
    assert '"args":null' in jobs[0].to_json()


def test_enqueue_many_validates_every_args_before_writing(enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis) -> None:
    with pytest.raises(TypeError):
        enqueuer.enqueue_many("x", [{"a": 1}, {"b": {1, 2}}])
    assert fake_redis.dbsize() == 0


# --- enqueue_in --------------------------------------------------------------------------------------------


def test_enqueue_in_adds_a_scheduled_job_due_then(
    enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    job = enqueuer.enqueue_in("x", 30, {"a": 1})
    assert isinstance(job, ScheduledJob)
    assert job.run_at == 1700000030 and job.enqueued_at == 1700000000
    assert fake_redis.zrange(f"{namespace}:scheduled", 0, -1, withscores=True) == [(job.to_json().encode(), 1700000030)]
    assert fake_redis.exists(f"{namespace}:jobs:x") == 0
    assert fake_redis.smembers(f"{namespace}:known_jobs") == {b"x"}


def test_enqueue_in_rounds_the_due_time_up(fake_redis: fakeredis.FakeRedis, namespace: str) -> None:
    job = Enqueuer(namespace, fake_redis, clock=lambda: 1_700_000_000.2).enqueue_in("x", 1.5)
    assert job.run_at == math.ceil(1_700_000_000.2 + 1.5) == 1700000002


def test_enqueue_in_with_a_negative_delay_is_due_now(enqueuer: Enqueuer) -> None:
    assert enqueuer.enqueue_in("x", -10).run_at == 1700000000


@pytest.mark.parametrize("seconds", [math.nan, math.inf, "10", None, True])
def test_enqueue_in_refuses_a_bad_delay(offline_enqueuer: Enqueuer, seconds: object) -> None:
    with pytest.raises(TypeError):
        offline_enqueuer.enqueue_in("x", seconds, {"a": 1})  # type: ignore[arg-type]


# --- validation before Redis -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [[1, 2], "a=1", 5, {"s": {1, 2}}, {"n": math.nan}, {"n": math.inf}, {1: "non-str key"}, {"b": b"bytes"}],
    ids=["list", "str", "int", "set-inside", "nan", "inf", "int-key", "bytes"],
)
def test_bad_args_raise_type_error_before_redis_is_touched(offline_enqueuer: Enqueuer, args: object) -> None:
    with pytest.raises(TypeError):
        offline_enqueuer.enqueue("x", args)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        offline_enqueuer.enqueue_in("x", 10, args)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        offline_enqueuer.enqueue_many("x", [args])  # type: ignore[list-item]


@pytest.mark.parametrize("name", ["a:b", "a b", "", "tab\t", "ctl\x01"])
def test_bad_names_raise_value_error_before_redis_is_touched(offline_enqueuer: Enqueuer, name: str) -> None:
    with pytest.raises(ValueError):
        offline_enqueuer.enqueue(name)
    with pytest.raises(ValueError):
        offline_enqueuer.enqueue_in(name, 10)
    with pytest.raises(ValueError):
        offline_enqueuer.enqueue_many(name, [None])


def test_non_string_name_raises_type_error_before_redis_is_touched(offline_enqueuer: Enqueuer) -> None:
    with pytest.raises(TypeError):
        offline_enqueuer.enqueue(7)  # type: ignore[arg-type]


def test_redis_fault_becomes_connection_failed(offline_enqueuer: Enqueuer) -> None:
    with pytest.raises(ConnectionFailed):
        offline_enqueuer.enqueue("x", {"a": 1})


def test_unreachable_redis_raises_connection_failed_naming_the_server() -> None:
    # No client-side retries: redis-py's default backoff would spend seconds before giving up.
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    with pytest.raises(ConnectionFailed, match=r"Redis at 127\.0\.0\.1:1/0"):
        Enqueuer("ns", client).enqueue("x")


def test_known_jobs_is_written_again_after_a_failed_enqueue(namespace: str) -> None:
    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server)
    enqueuer = Enqueuer(namespace, client, clock=lambda: NOW)
    server.connected = False
    with pytest.raises(ConnectionFailed):
        enqueuer.enqueue("x")
    server.connected = True
    enqueuer.enqueue("x")
    assert client.smembers(f"{namespace}:known_jobs") == {b"x"}


def test_known_jobs_is_written_once_per_name_then_refreshed_after_a_while(
    fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    now = [NOW]
    enqueuer = Enqueuer(namespace, fake_redis, clock=lambda: now[0])
    enqueuer.enqueue("x")
    enqueuer.enqueue_many("y", [{}])
    assert fake_redis.smembers(f"{namespace}:known_jobs") == {b"x", b"y"}
    fake_redis.delete(f"{namespace}:known_jobs")
    enqueuer.enqueue("x")
    assert fake_redis.exists(f"{namespace}:known_jobs") == 0, "not re-added on every enqueue"
    now[0] += 301
    enqueuer.enqueue("x")
    assert fake_redis.smembers(f"{namespace}:known_jobs") == {b"x"}


def test_namespace_and_redis_url_default_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKQ_NAMESPACE", "from-env")
    monkeypatch.setenv("WORKQ_REDIS_URL", "redis://127.0.0.1:1/5")
    enqueuer = Enqueuer()
    assert enqueuer.namespace == "from-env"
    assert enqueuer.keys.queue("x") == "from-env:jobs:x"
    assert enqueuer.redis.connection_pool.connection_kwargs["db"] == 5


# --- unique jobs -------------------------------------------------------------------------------------------


def test_enqueue_unique_stores_the_job_and_a_lock(
    enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    job = enqueuer.enqueue_unique("x", {"b": 1, "a": 2})
    assert job is not None and job.unique
    lock = f'{namespace}:unique:x:{{"a":2,"b":1}}\n'
    assert job.unique_key == lock
    [stored] = fake_redis.lrange(f"{namespace}:jobs:x", 0, -1)
    assert stored == job.to_json().encode()
    assert json.loads(stored)["unique"] is True and json.loads(stored)["unique_key"] == lock
    assert fake_redis.get(lock) == stored, "the lock holds its owner: the job itself"
    assert 86_399_000 < fake_redis.pttl(lock) <= 86_400_000
    assert fake_redis.smembers(f"{namespace}:known_jobs") == {b"x"}


def test_enqueue_unique_refuses_an_identical_pending_job(
    enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    assert enqueuer.enqueue_unique("x", {"a": 1, "b": 2}) is not None
    assert enqueuer.enqueue_unique("x", {"b": 2, "a": 1.0}) is None
    assert fake_redis.llen(f"{namespace}:jobs:x") == 1


def test_enqueue_unique_allows_different_args_or_names(
    enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    assert enqueuer.enqueue_unique("x", {"a": 1}) is not None
    assert enqueuer.enqueue_unique("x", {"a": 2}) is not None
    assert enqueuer.enqueue_unique("y", {"a": 1}) is not None
    assert fake_redis.llen(f"{namespace}:jobs:x") == 2


def test_enqueue_unique_without_args_locks_the_bare_name(
    enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    job = enqueuer.enqueue_unique("x")
    assert job is not None and job.unique_key == f"{namespace}:unique:x:"
    assert '"args":null' in job.to_json()
    assert enqueuer.enqueue_unique("x") is None


def test_enqueue_unique_is_possible_again_once_the_lock_is_released(
    enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis
) -> None:
    first = enqueuer.enqueue_unique("x", {"a": 1})
    assert first is not None
    fake_redis.delete(first.unique_key)  # what a worker does when it starts the job
    assert enqueuer.enqueue_unique("x", {"a": 1}) is not None


def test_enqueue_unique_in_schedules_and_keeps_the_lock_past_the_due_time(
    enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    job = enqueuer.enqueue_unique_in("x", 3600, {"a": 1})
    assert isinstance(job, ScheduledJob) and job.run_at == 1700003600
    assert fake_redis.zscore(f"{namespace}:scheduled", job.to_json()) == 1700003600
    assert 90_000_000 - 1000 < fake_redis.pttl(job.unique_key) <= 90_000_000


def test_a_scheduled_unique_job_blocks_an_immediate_one(enqueuer: Enqueuer) -> None:
    assert enqueuer.enqueue_unique_in("x", 60, {"a": 1}) is not None
    assert enqueuer.enqueue_unique("x", {"a": 1}) is None
    assert enqueuer.enqueue_unique_in("x", 120, {"a": 1}) is None


def test_enqueue_unique_by_key_stores_the_job_json_as_the_lock(
    enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    job = enqueuer.enqueue_unique_by_key("x", {"v": 1}, key={"user": 7})
    assert job is not None
    assert job.unique_key == f'{namespace}:unique:x:{{"user":7}}\n'
    assert fake_redis.get(job.unique_key) == job.to_json().encode()


def test_enqueue_unique_by_key_replaces_the_pending_args(
    enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    first = enqueuer.enqueue_unique_by_key("x", {"v": 1}, key={"user": 7})
    assert first is not None
    assert enqueuer.enqueue_unique_by_key("x", {"v": 2}, key={"user": 7}) is None
    assert fake_redis.lrange(f"{namespace}:jobs:x", 0, -1) == [first.to_json().encode()]
    newest = Job.from_json(fake_redis.get(first.unique_key))  # type: ignore[arg-type]
    assert newest.args == {"v": 2} and newest.unique_key == first.unique_key
    assert fake_redis.pttl(first.unique_key) > 86_399_000


def test_enqueue_unique_by_key_ignores_the_args_for_uniqueness(enqueuer: Enqueuer) -> None:
    assert enqueuer.enqueue_unique_by_key("x", {"v": 1}, key={"k": 1}) is not None
    assert enqueuer.enqueue_unique_by_key("x", {"v": 1}, key={"k": 2}) is not None


def test_enqueue_unique_in_by_key_schedules(
    enqueuer: Enqueuer, fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    job = enqueuer.enqueue_unique_in_by_key("x", 30, {"v": 1}, key={"k": 1})
    assert isinstance(job, ScheduledJob) and job.run_at == 1700000030
    assert fake_redis.zcard(f"{namespace}:scheduled") == 1
    assert enqueuer.enqueue_unique_in_by_key("x", 30, {"v": 2}, key={"k": 1}) is None


@pytest.mark.parametrize("key", [{"s": {1}}, {1: "a"}, {"n": math.nan}, ["k"]])
def test_bad_unique_key_maps_raise_type_error_before_redis_is_touched(offline_enqueuer: Enqueuer, key: object) -> None:
    with pytest.raises(TypeError):
        offline_enqueuer.enqueue_unique_by_key("x", {"a": 1}, key=key)  # type: ignore[arg-type]


def test_unique_enqueues_validate_before_redis_is_touched(offline_enqueuer: Enqueuer) -> None:
    with pytest.raises(TypeError):
        offline_enqueuer.enqueue_unique("x", {"a": {1}})
    with pytest.raises(ValueError):
        offline_enqueuer.enqueue_unique("a:b")
    with pytest.raises(TypeError):
        offline_enqueuer.enqueue_unique_in("x", math.inf)
    with pytest.raises(ConnectionFailed):
        offline_enqueuer.enqueue_unique("x", {"a": 1})


def test_a_lone_surrogate_in_args_is_a_type_error_before_redis_is_touched(offline_enqueuer: Enqueuer) -> None:
    with pytest.raises(TypeError):
        offline_enqueuer.enqueue("x", {"s": "\ud800"})


def test_only_an_enqueue_that_makes_the_queue_non_empty_wakes_waiting_pools(
    fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    subscriber = fake_redis.pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe(f"{namespace}:wake")
    enqueuer = Enqueuer(namespace, fake_redis)
    fake_redis.set(f"{namespace}:jobs:x:waiting", "1")
    enqueuer.enqueue("x")
    enqueuer.enqueue("x")
    enqueuer.enqueue_many("x", [{}, {}])
    messages = [subscriber.get_message(timeout=0.1) for _ in range(3)]
    assert [message["data"] for message in messages if message] == [b"x"]
    assert not fake_redis.exists(f"{namespace}:jobs:x:waiting")


def test_a_wake_up_that_fails_in_the_round_trip_of_its_push_leaves_the_job_queued(
    fake_redis: fakeredis.FakeRedis, namespace: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The wake-up rides with a push into a queue the last push found empty; its error reply does not fail the
    enqueue (the job is queued: pools find it at their next poll), it is logged."""
    enqueuer = Enqueuer(namespace, fake_redis)
    enqueuer.enqueue("x")
    fake_redis.delete(f"{namespace}:jobs:x")  # a pool took the job
    source = "return redis.error_reply('NOPERM no wake-ups here')"
    refused = ScriptCall(ScriptText(source, hashlib.sha1(source.encode()).hexdigest()), [], [])
    monkeypatch.setattr(EnqueueCommands, "wake", lambda self, name: refused)

    job = enqueuer.enqueue("x")

    assert Job.from_json(popped(fake_redis, f"{namespace}:jobs:x")).id == job.id
    assert "could not wake idle worker pools (no wake-ups here)" in caplog.text


def test_a_delay_beyond_a_hundred_years_is_refused_before_redis_is_touched(enqueuer: Enqueuer) -> None:
    with pytest.raises(ValueError, match="100 years"):
        enqueuer.enqueue_in("x", 10**17)


def test_configure_moves_an_enqueuer_to_another_namespace_redis_and_clock(fake_redis: fakeredis.FakeRedis) -> None:
    enqueuer = Enqueuer("before", "redis://127.0.0.1:1/0")  # a module-level enqueuer, set up before the app's settings
    enqueuer.configure(namespace="app", redis=fake_redis, clock=lambda: NOW)
    job = enqueuer.enqueue("x")
    assert (enqueuer.namespace, enqueuer.keys.queue("x")) == ("app", "app:jobs:x")
    assert Job.from_json(popped(fake_redis, "app:jobs:x")).id == job.id and job.enqueued_at == NOW
    assert fake_redis.smembers("app:known_jobs") == {b"x"}
    enqueuer.configure(namespace="other")  # the rest stays: same Redis; known jobs are re-added in the new namespace
    enqueuer.enqueue("x")
    assert fake_redis.llen("other:jobs:x") == 1 and fake_redis.smembers("other:known_jobs") == {b"x"}


def test_configured_restores_the_settings_and_client_after_the_block(fake_redis: fakeredis.FakeRedis) -> None:
    enqueuer = Enqueuer("ns", "redis://127.0.0.1:1/0")
    client = enqueuer.redis
    with enqueuer.configured(redis=fake_redis, namespace="tmp"):
        enqueuer.enqueue("x")
    assert (enqueuer.redis, enqueuer.namespace, enqueuer.keys.prefix) == (client, "ns", "ns:")
    assert fake_redis.llen("tmp:jobs:x") == 1
    with pytest.raises(ConnectionFailed):
        enqueuer.enqueue("x")


def test_configure_refuses_a_namespace_without_braces_on_a_cluster_url() -> None:
    enqueuer = Enqueuer("ns", "redis://127.0.0.1:1/0")
    with pytest.raises(WorkqError, match="cannot be used on Redis Cluster"):
        enqueuer.configure(redis="redis+cluster://127.0.0.1:1")
    assert enqueuer.namespace == "ns"
