"""Enqueuing against a real Redis: what handlers receive, the bytes stored (wire-format.md), delayed jobs and an
unreachable server."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

import workq
from integration.job_log import JobLog
from integration.namespace_view import NamespaceView
from integration.pool_factory import PoolFactory
from workq import Enqueuer, Job, ScheduledJob
from workq.keys import Keys

FIELD_ORDER = ("name", "id", "t", "args", "unique", "unique_key", "fails", "err", "failed_at")
FIXED_NOW = 1_700_000_000.75


def field_positions(raw: str) -> list[int]:
    """Offsets of the top-level fields present in `raw`, in wire order; sorted iff the order is Go's."""
    return [raw.index(f'"{field}":') for field in FIELD_ORDER if f'"{field}":' in raw]


def test_handler_receives_the_args_it_was_enqueued_with(make_pool: PoolFactory, enqueuer: Enqueuer) -> None:
    log = JobLog()
    pool = make_pool()
    pool.job("send_email", log.record)
    args = {"address": "a@b.c", "attempts": 3, "ratio": 0.5, "urgent": True, "tags": ["x", 1], "meta": {"k": None}}
    enqueued = enqueuer.enqueue("send_email", args)

    pool.start()
    (job,) = log.wait_for(1)

    assert (job.name, job.id, job.enqueued_at, job.fails) == ("send_email", enqueued.id, enqueued.enqueued_at, 0)
    assert job.args == args
    assert job.arg_str("address") == "a@b.c"
    assert job.arg_int("attempts") == 3
    assert job.arg_float("ratio") == 0.5
    assert job.arg_bool("urgent") is True
    assert job.arg_error() is None


def test_decorated_handler_enqueues_its_own_job_and_stays_callable(make_pool: PoolFactory, view: NamespaceView) -> None:
    log = JobLog()
    pool = make_pool()

    @pool.job("greet")
    def greet(job: Job) -> str:
        log.record(job)
        return f"hello {job.arg_str('who')}"

    enqueued = greet.enqueue(who="ada", times=2)
    scheduled = greet.enqueue_in(600, who="bob")
    pool.start()
    (job,) = log.wait_for(1)

    assert (job.id, job.args) == (enqueued.id, {"who": "ada", "times": 2})
    assert [(member.fields["id"], member.fields["args"], member.score) for member in view.scheduled()] == [
        (scheduled.id, {"who": "bob"}, scheduled.run_at)
    ]
    assert greet(Job(name="greet", args={"who": "eve"})) == "hello eve"


def test_jobs_of_one_name_run_in_enqueue_order(make_pool: PoolFactory, enqueuer: Enqueuer) -> None:
    log = JobLog()
    pool = make_pool(concurrency=1)
    pool.job("step", log.record)
    enqueuer.enqueue("step", {"i": 0})
    enqueuer.enqueue_many("step", [{"i": i} for i in range(1, 1200)])
    enqueuer.enqueue("step", {"i": 1200})

    pool.start()
    jobs = log.wait_for(1201)

    assert [job.arg_int("i") for job in jobs] == list(range(1201))


def test_stored_job_json_matches_the_wire_format(enqueuer: Enqueuer, view: NamespaceView) -> None:
    before = int(time.time())
    with_args = enqueuer.enqueue(
        "send_email",
        {"to": "a@b.c", "n": 3, "html": "<b>&</b>", "city": "Zürich", "ratio": 2.0, "deep": {"b": 1, "a": 2}},
    )
    without_args = enqueuer.enqueue("send_email")
    after = int(time.time())

    newest, oldest = (raw.decode("utf-8") for raw in view.queued("send_email"))

    assert re.fullmatch(r"[0-9a-f]{24}", with_args.id) and re.fullmatch(r"[0-9a-f]{24}", without_args.id)
    assert with_args.id != without_args.id
    assert before <= with_args.enqueued_at <= without_args.enqueued_at <= after
    # Go's encoding/json: sorted keys, no spaces, <>& escaped, other non-ASCII raw, whole floats without ".0".
    assert oldest == (
        f'{{"name":"send_email","id":"{with_args.id}","t":{with_args.enqueued_at},'
        '"args":{"city":"Zürich","deep":{"a":2,"b":1},"html":"\\u003cb\\u003e\\u0026\\u003c/b\\u003e",'
        '"n":3,"ratio":2,"to":"a@b.c"}}'
    )
    assert newest == f'{{"name":"send_email","id":"{without_args.id}","t":{without_args.enqueued_at},"args":null}}'
    for raw in (oldest, newest):
        assert field_positions(raw) == sorted(field_positions(raw))
    assert view.client.sismember(view.key("known_jobs"), "send_email")


def test_job_json_types(enqueuer: Enqueuer, view: NamespaceView) -> None:
    enqueuer.enqueue("typed", {"x": 1})
    enqueuer.enqueue("typed")
    for raw in view.queued("typed"):
        fields: dict[str, Any] = json.loads(raw)
        assert list(fields) == ["name", "id", "t", "args"]
        assert type(fields["t"]) is int
        assert isinstance(fields["id"], str) and re.fullmatch(r"[0-9a-f]{24}", fields["id"])
        assert fields["args"] is None or isinstance(fields["args"], dict)


def test_times_are_whole_seconds_and_run_at_is_rounded_up(namespace: str, redis_client: redis.Redis) -> None:
    view = NamespaceView(redis_client, namespace)
    enqueuer = Enqueuer(namespace, redis_client, clock=lambda: FIXED_NOW)

    queued = enqueuer.enqueue("report", {"day": 1})
    scheduled = enqueuer.enqueue_in("report", 30, {"day": 2})

    assert queued.enqueued_at == scheduled.enqueued_at == math.floor(FIXED_NOW)
    assert scheduled.run_at == math.ceil(FIXED_NOW + 30)
    assert view.queued("report") == [
        f'{{"name":"report","id":"{queued.id}","t":{math.floor(FIXED_NOW)},"args":{{"day":1}}}}'.encode()
    ]
    (member,) = view.scheduled()
    assert member.raw == (
        f'{{"name":"report","id":"{scheduled.id}","t":{math.floor(FIXED_NOW)},"args":{{"day":2}}}}'.encode()
    )
    assert member.score == scheduled.run_at


def test_enqueue_in_runs_the_job_once_due_and_never_before(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    ran_at: list[float] = []
    log = JobLog()
    pool = make_pool()

    @pool.job("remind")
    def remind(job: Job) -> None:
        ran_at.append(time.time())
        log.record(job)

    scheduled = enqueuer.enqueue_in("remind", 0.5, {"who": "ada"})
    assert [member.score for member in view.scheduled()] == [scheduled.run_at]
    assert view.queued("remind") == []

    pool.start()
    (job,) = log.wait_for(1)

    assert job.id == scheduled.id and job.args == {"who": "ada"}
    assert ran_at[0] >= scheduled.run_at
    assert job.enqueued_at >= scheduled.run_at, "t is reset to now when a job moves from scheduled to its queue"
    assert view.scheduled() == []


def socket_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts writes of every redis-py connection from now on: one per command or pipeline sent."""
    writes = [0]
    send = redis.connection.AbstractConnection.send_packed_command

    def counted(self: Any, command: Any, check_health: bool = True) -> None:
        writes[0] += 1
        send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    return writes


def socket_exchanges(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records the writes and reads of every redis-py connection from now on, a run of either as one entry: a
    round trip is a "write" then a "read"."""
    exchanges: list[str] = []
    send, read = (
        redis.connection.AbstractConnection.send_packed_command,
        redis.connection.AbstractConnection.read_response,
    )

    def note(kind: str) -> None:
        if not exchanges or exchanges[-1] != kind:
            exchanges.append(kind)

    def sent(self: Any, command: Any, check_health: bool = True) -> None:
        note("write")
        send(self, command, check_health)

    def received(self: Any, *args: Any, **kwargs: Any) -> Any:
        note("read")
        return read(self, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", sent)
    monkeypatch.setattr(redis.connection.AbstractConnection, "read_response", received)
    return exchanges


def server_now(client: redis.Redis) -> float:
    seconds, microseconds = client.time()
    return seconds + microseconds / 1_000_000


@pytest.mark.parametrize(
    "schedule",
    [
        lambda enqueuer: enqueuer.enqueue_in("remind", 30.2),
        lambda enqueuer: enqueuer.enqueue_unique_in("remind", 30.2, {"a": 1}),
        lambda enqueuer: enqueuer.enqueue_unique_in_by_key("remind", 30.2, {"a": 1}, {"k": 1}),
    ],
    ids=["enqueue_in", "enqueue_unique_in", "enqueue_unique_in_by_key"],
)
def test_a_delayed_enqueue_takes_one_round_trip_on_redis_time(
    schedule: Callable[[Enqueuer], ScheduledJob],
    enqueuer: Enqueuer,
    view: NamespaceView,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Due time on Redis's clock without a TIME round trip of its own: the script reads the clock."""
    enqueuer.enqueue_in("warm", 1)  # connects and loads the script
    enqueuer.enqueue_unique_in("warm", 1)
    server_before = server_now(view.client)
    writes = socket_writes(monkeypatch)

    scheduled = schedule(enqueuer)

    assert writes[0] == 1
    monkeypatch.undo()
    assert server_before + 30.2 <= scheduled.run_at <= math.ceil(server_now(view.client) + 30.2)
    reminders = [
        (member.score, member.fields["id"]) for member in view.scheduled() if member.fields["name"] == "remind"
    ]
    assert reminders == [(scheduled.run_at, scheduled.id)]


UNREACHABLE = "redis://127.0.0.1:1/0"


@pytest.mark.parametrize(
    "call",
    [
        lambda enqueuer: enqueuer.enqueue("ping", {"n": 1}),
        lambda enqueuer: enqueuer.enqueue_in("ping", 5),
        lambda enqueuer: enqueuer.enqueue_many("ping", [{"n": 1}, None]),
    ],
    ids=["enqueue", "enqueue_in", "enqueue_many"],
)
def test_enqueue_to_unreachable_redis_raises_connection_failed(call: Callable[[Enqueuer], object]) -> None:
    enqueuer = Enqueuer("workq-unreachable", UNREACHABLE)

    with pytest.raises(workq.ConnectionFailed, match=r"127\.0\.0\.1:1\b") as caught:
        call(enqueuer)

    assert isinstance(caught.value, workq.WorkqError)


def test_an_enqueue_into_a_queue_pools_drained_wakes_them_in_its_one_round_trip(
    enqueuer: Enqueuer, redis_client: redis.Redis, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Idle pools start a job one round trip of the enqueuer's sooner: after a push that found its queue empty, the
    next push of that name carries the wake-up (a pool marked itself waiting meanwhile: it is published)."""
    keys = Keys(namespace)
    listener = redis_client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(keys.wake_channel)
    enqueuer.enqueue("x")  # the queue was empty: its wake-up follows in a second round trip (none waits yet)
    redis_client.delete(keys.queue("x"))  # a pool took the job, found the queue empty and waits
    redis_client.set(keys.waiting("x"), "1", px=10_000)
    exchanges = socket_exchanges(monkeypatch)

    enqueuer.enqueue("x")

    assert exchanges == ["write", "read"], "the push and the wake-up are written before any reply is read"
    deadline = time.monotonic() + 5
    message = None
    while message is None and time.monotonic() < deadline:
        message = listener.get_message(timeout=0.1)  # None also for the (ignored) subscribe confirmation
    listener.close()
    assert message is not None and message["data"] == b"x"
    assert not redis_client.exists(keys.waiting("x"))
