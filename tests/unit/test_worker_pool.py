"""WorkerPool registration, options, configuration and the start/stop guard rails (fakeredis, no real Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import fakeredis
import pytest
import redis

from support import wait_until
from workq.errors import ConnectionFailed, WorkqError
from workq.handler import JobHandler
from workq.job import Job, ScheduledJob
from workq.middleware import Next
from workq.worker_pool import WorkerPool

NOW = 1_700_000_000.0


def noop(job: Job) -> None:
    """Do nothing."""


@pytest.fixture
def pool(fake_redis: fakeredis.FakeRedis, namespace: str) -> Iterator[WorkerPool]:
    worker_pool = WorkerPool(namespace, fake_redis, concurrency=1, clock=lambda: NOW)
    yield worker_pool
    worker_pool.stop()


# --- registration ------------------------------------------------------------------------------------------


def test_decorator_registers_the_job(pool: WorkerPool) -> None:
    @pool.job("send_email", priority=5)
    def send_email(job: Job) -> str:
        """Send it."""
        return "sent"

    assert pool.job_names == ["send_email"]
    assert isinstance(send_email, JobHandler)
    assert send_email.options.priority == 5
    assert send_email(Job(name="send_email")) == "sent"
    assert (send_email.__name__, send_email.__doc__) == ("send_email", "Send it.")  # type: ignore[attr-defined]


def test_plain_form_registers_the_function(pool: WorkerPool) -> None:
    handler = pool.job("cleanup", noop, max_fails=1)
    assert pool.job_names == ["cleanup"]
    assert handler.fn is noop and handler.options.max_fails == 1


def test_job_names_are_sorted(pool: WorkerPool) -> None:
    for name in ("c", "a", "b"):
        pool.job(name, noop)
    assert pool.job_names == ["a", "b", "c"]


def test_decorated_enqueue_uses_the_pool_namespace_and_clock(
    pool: WorkerPool, fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    handler = pool.job("send_email", noop)
    job = handler.enqueue(address="a@b.c")
    assert job.enqueued_at == int(NOW)
    assert fake_redis.rpop(f"{namespace}:jobs:send_email") == job.to_json().encode()


def test_decorated_enqueue_in_schedules_under_the_pool_namespace(
    pool: WorkerPool, fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    scheduled = pool.job("send_email", noop).enqueue_in(30, address="a@b.c")
    assert isinstance(scheduled, ScheduledJob) and scheduled.run_at == int(NOW) + 30
    assert fake_redis.zscore(f"{namespace}:scheduled", scheduled.to_json()) == NOW + 30


def test_duplicate_name_is_refused(pool: WorkerPool) -> None:
    pool.job("x", noop)
    with pytest.raises(ValueError, match="already registered"):
        pool.job("x", noop)


@pytest.mark.parametrize("name", ["a:b", "a b", "", "tab\tname", "new\nline", "nul\x00"])
def test_invalid_job_names_are_refused(pool: WorkerPool, name: str) -> None:
    with pytest.raises(ValueError):
        pool.job(name, noop)
    assert pool.job_names == []


def test_invalid_name_is_refused_by_the_decorator_form_too(pool: WorkerPool) -> None:
    with pytest.raises(ValueError):
        pool.job("a:b")


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"priority": 0}, ValueError),
        ({"priority": 100_001}, ValueError),
        ({"priority": True}, TypeError),
        ({"priority": "high"}, TypeError),
        ({"max_fails": 0}, ValueError),
        ({"max_concurrency": -1}, ValueError),
        ({"timeout": -1}, ValueError),
        ({"backoff": "fast"}, TypeError),
        ({"skip_dead": "yes"}, TypeError),
    ],
)
def test_bad_options_are_refused_at_registration(
    pool: WorkerPool, options: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        pool.job("x", noop, **options)  # type: ignore[call-overload]
    assert pool.job_names == []


def test_a_refused_registration_can_be_retried_with_good_options(pool: WorkerPool) -> None:
    with pytest.raises(ValueError):
        pool.job("x", noop, priority=0)
    pool.job("x", noop, priority=1)
    assert pool.job_names == ["x"]


@pytest.mark.parametrize("fn", [lambda: None, lambda job, other: None], ids=["no-params", "two-required-params"])
def test_handler_with_a_wrong_signature_is_refused(pool: WorkerPool, fn: object) -> None:
    with pytest.raises(TypeError, match="one argument"):
        pool.job("x", fn)  # type: ignore[call-overload]
    assert pool.job_names == []


def test_non_callable_handler_is_refused(pool: WorkerPool) -> None:
    with pytest.raises(TypeError):
        pool.job("x", 42)  # type: ignore[call-overload]


def test_middleware_decorator_returns_the_function(pool: WorkerPool) -> None:
    def timing(job: Job, next: Next) -> None:
        next()

    assert pool.middleware(timing) is timing


def test_non_callable_middleware_is_refused(pool: WorkerPool) -> None:
    with pytest.raises(TypeError):
        pool.middleware("nope")  # type: ignore[arg-type]


# --- construction and configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("concurrency", "error"), [(0, ValueError), (-1, ValueError), (True, TypeError), ("2", TypeError)]
)
def test_bad_concurrency_is_refused(
    fake_redis: fakeredis.FakeRedis, concurrency: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        WorkerPool("ns", fake_redis, concurrency=concurrency)  # type: ignore[arg-type]


def test_bad_heartbeat_settings_are_refused(fake_redis: fakeredis.FakeRedis) -> None:
    with pytest.raises(ValueError):
        WorkerPool("ns", fake_redis, heartbeat_interval=0)
    with pytest.raises(ValueError, match="dead_after"):
        WorkerPool("ns", fake_redis, heartbeat_interval=5, dead_after=10)


def test_dead_after_defaults_to_a_safe_multiple_of_the_heartbeat(fake_redis: fakeredis.FakeRedis) -> None:
    assert WorkerPool("ns", fake_redis, heartbeat_interval=5).dead_after == 60
    assert WorkerPool("ns", fake_redis, heartbeat_interval=10).dead_after == 120


def test_pool_ids_are_24_hex_and_distinct(fake_redis: fakeredis.FakeRedis) -> None:
    first, second = WorkerPool("ns", fake_redis), WorkerPool("ns", fake_redis)
    assert len(first.pool_id) == 24 and int(first.pool_id, 16) >= 0
    assert first.pool_id != second.pool_id


def test_configure_changes_the_namespace_enqueues_go_to(pool: WorkerPool, fake_redis: fakeredis.FakeRedis) -> None:
    handler = pool.job("x", noop)
    handler.enqueue()
    pool.configure(namespace="elsewhere")
    assert pool.namespace == "elsewhere"
    job = handler.enqueue()
    assert fake_redis.lrange("elsewhere:jobs:x", 0, -1) == [job.to_json().encode()]


def test_configure_changes_the_redis_enqueues_go_to(pool: WorkerPool, namespace: str) -> None:
    other = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    handler = pool.job("x", noop)
    pool.configure(redis=other)
    job = handler.enqueue()
    assert pool.redis is other
    assert other.lrange(f"{namespace}:jobs:x", 0, -1) == [job.to_json().encode()]


def test_configure_validates_concurrency(pool: WorkerPool) -> None:
    pool.configure(concurrency=3)
    assert pool.concurrency == 3
    with pytest.raises(ValueError):
        pool.configure(concurrency=0)


# --- lifecycle guard rails ---------------------------------------------------------------------------------


def test_start_without_jobs_is_refused(pool: WorkerPool) -> None:
    with pytest.raises(WorkqError, match="no jobs registered"):
        pool.start()


def test_start_records_job_names_and_concurrency_caps(
    pool: WorkerPool, fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    pool.job("a", noop, max_concurrency=3)
    pool.job("b", noop)
    pool.start()
    assert fake_redis.smembers(f"{namespace}:known_jobs") == {b"a", b"b"}
    assert fake_redis.get(f"{namespace}:jobs:a:max_concurrency") == b"3"
    assert fake_redis.get(f"{namespace}:jobs:b:max_concurrency") == b"0"


def test_changes_after_start_are_refused(pool: WorkerPool) -> None:
    pool.job("x", noop)
    pool.start()
    with pytest.raises(WorkqError):
        pool.job("y", noop)
    with pytest.raises(WorkqError):
        pool.middleware(lambda job, next: next())
    with pytest.raises(WorkqError):
        pool.configure(namespace="other")
    with pytest.raises(WorkqError):
        pool.start()
    assert pool.job_names == ["x"]


def test_registration_is_allowed_again_after_stop(pool: WorkerPool) -> None:
    pool.job("x", noop)
    pool.start()
    pool.stop()
    pool.job("y", noop)
    assert pool.job_names == ["x", "y"]


def test_context_manager_starts_and_stops(pool: WorkerPool) -> None:
    pool.job("x", noop)
    with pool, pytest.raises(WorkqError):
        pool.job("y", noop)
    pool.job("y", noop)


def test_stop_without_start_is_a_no_op(pool: WorkerPool) -> None:
    pool.stop()


def test_drain_needs_a_started_pool(pool: WorkerPool) -> None:
    with pytest.raises(WorkqError):
        pool.drain()


def test_request_stop_is_seen_by_waiters(pool: WorkerPool) -> None:
    assert not pool.stopping
    pool.request_stop()
    assert pool.stopping
    assert pool.wait_for_stop_request(timeout=0)


def test_start_on_unreachable_redis_raises_connection_failed() -> None:
    server = fakeredis.FakeServer()
    server.connected = False
    pool = WorkerPool("ns", fakeredis.FakeRedis(server=server), concurrency=1)
    pool.job("x", noop)
    with pytest.raises(ConnectionFailed):
        pool.start()
    pool.job("y", noop)  # not started, so still configurable


def test_redis_url_is_turned_into_a_client_lazily() -> None:
    pool = WorkerPool("ns", "redis://127.0.0.1:1/3", concurrency=1)
    assert isinstance(pool.redis, redis.Redis)
    assert pool.redis.connection_pool.connection_kwargs["db"] == 3


# --- periodic jobs -----------------------------------------------------------------------------------------


def test_periodically_enqueue_refuses_a_bad_spec_at_once(pool: WorkerPool) -> None:
    with pytest.raises(ValueError, match="cron spec"):
        pool.periodically_enqueue("every minute", "x")


def test_periodically_enqueue_refuses_a_bad_name_at_once(pool: WorkerPool) -> None:
    with pytest.raises(ValueError):
        pool.periodically_enqueue("@hourly", "a b")


def test_periodic_decorator_registers_the_job_under_its_function_name(pool: WorkerPool) -> None:
    @pool.periodic("@hourly", max_fails=2)
    def cleanup(job: Job) -> None: ...

    assert pool.job_names == ["cleanup"]
    assert cleanup.options.max_fails == 2


def test_periodic_decorator_refuses_a_bad_spec_before_registering(pool: WorkerPool) -> None:
    with pytest.raises(ValueError):
        pool.periodic("nonsense")
    assert pool.job_names == []


def test_periodic_refuses_an_unknown_timezone_before_registering(pool: WorkerPool) -> None:
    with pytest.raises(ValueError, match="unknown timezone"):
        pool.periodic("@hourly", timezone="Europe/Atlantis")
    with pytest.raises(ValueError, match="unknown timezone"):
        pool.periodically_enqueue("@hourly", "x", timezone="Europe/Atlantis")
    assert pool.job_names == []


def test_a_started_pool_adds_its_cron_ticks_to_scheduled(
    pool: WorkerPool, fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    pool.periodic("0 * * * * *", name="tick")(noop)
    pool.start()
    ticks = cast(
        list[tuple[bytes, float]],
        wait_until(lambda: fake_redis.zrange(f"{namespace}:scheduled", 0, -1, withscores=True), timeout=5),
    )
    assert [score for _, score in ticks] == [1700000040, 1700000100, 1700000160, 1700000220]
    assert ticks[0][0] == b'{"name":"tick","id":"periodic:tick:0 * * * * *:1700000040","t":1700000040,"args":null}'


def test_periodic_jobs_cannot_be_added_to_a_running_pool(pool: WorkerPool) -> None:
    pool.job("x", noop)
    pool.start()
    with pytest.raises(WorkqError):
        pool.periodically_enqueue("@hourly", "x")


def test_configured_runs_a_block_on_other_settings_then_restores_the_same_client(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    pool = WorkerPool("ns", "redis://127.0.0.1:1/0", concurrency=1)
    pool.job("x", noop)
    client, enqueuer = pool.redis, pool.enqueuer
    with pool.configured(redis=fake_redis, namespace="tmp", clock=lambda: 1_700_000_000.0):
        assert pool.enqueuer.enqueue("x").enqueued_at == 1_700_000_000
        assert pool.enqueuer.redis is fake_redis and fake_redis.llen("tmp:jobs:x") == 1
    assert (pool.redis, pool.enqueuer, pool.namespace) == (client, enqueuer, "ns")


def test_configured_refuses_to_restore_under_a_running_pool(fake_redis: fakeredis.FakeRedis) -> None:
    pool = WorkerPool("ns", "redis://127.0.0.1:1/0", concurrency=1)
    pool.job("x", noop)
    restoring = pytest.raises(WorkqError, match="still running at the end of its configured")
    with restoring, pool.configured(redis=fake_redis):
        pool.start()
    pool.stop()
