"""JobOptions defaults and validation, handler signature checks, and the decorated JobHandler."""

from __future__ import annotations

import math

import fakeredis
import pytest

from workq.enqueuer import Enqueuer
from workq.handler import JobHandler, JobOptions, check_handler
from workq.job import Job, ScheduledJob

NOW = 1_700_000_000.0


def test_job_options_defaults_match_gocraft() -> None:
    options = JobOptions()
    assert (options.priority, options.max_fails, options.skip_dead) == (1, 4, False)
    assert (options.max_concurrency, options.backoff, options.timeout) == (0, None, 0)


def test_job_options_accept_the_edges_of_their_ranges() -> None:
    options = JobOptions(priority=100_000, max_fails=1, max_concurrency=0, timeout=0.5, backoff=lambda job: 1)
    assert options.priority == 100_000


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"priority": 0}, ValueError),
        ({"priority": 100_001}, ValueError),
        ({"priority": True}, TypeError),
        ({"priority": "1"}, TypeError),
        ({"priority": 1.0}, TypeError),
        ({"max_fails": 0}, ValueError),
        ({"max_fails": None}, TypeError),
        ({"max_concurrency": -1}, ValueError),
        ({"timeout": -1}, ValueError),
        ({"timeout": "5"}, ValueError),
        ({"timeout": True}, ValueError),
        ({"backoff": 5}, TypeError),
        ({"skip_dead": 1}, TypeError),
        ({"skip_dead": "yes"}, TypeError),
    ],
)
def test_job_options_refuse_bad_values(options: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        JobOptions(**options)  # type: ignore[arg-type]


def test_job_options_refuse_a_nan_timeout() -> None:
    with pytest.raises(ValueError):
        JobOptions(timeout=math.nan)


def test_check_handler_accepts_one_argument_callables() -> None:
    def with_default(job: Job, extra: int = 1) -> None: ...

    def variadic(*args: object) -> None: ...

    for fn in (with_default, variadic, lambda job: None):
        assert check_handler("n", fn) is fn


@pytest.mark.parametrize(
    "fn",
    [lambda: None, lambda job, extra: None, lambda *, job: None, "not callable"],
    ids=["no-params", "two-required", "keyword-only", "not-callable"],
)
def test_check_handler_refuses_what_cannot_be_called_with_the_job(fn: object) -> None:
    with pytest.raises(TypeError, match="'n'"):
        check_handler("n", fn)


def send_email(job: Job) -> str:
    """Send one email."""
    return f"sent {job.arg_str('address')}"


def make_handler(client: fakeredis.FakeRedis, namespace: str) -> JobHandler:
    enqueuer = Enqueuer(namespace, client, clock=lambda: NOW)
    return JobHandler("send_email", send_email, JobOptions(), lambda: enqueuer)


def test_job_handler_is_still_the_plain_function(fake_redis: fakeredis.FakeRedis, namespace: str) -> None:
    handler = make_handler(fake_redis, namespace)
    assert handler(Job(name="send_email", args={"address": "a@b.c"})) == "sent a@b.c"
    assert handler.__name__ == "send_email"  # type: ignore[attr-defined]
    assert handler.__doc__ == "Send one email."
    assert handler.__wrapped__ is send_email  # type: ignore[attr-defined]


def test_job_handler_enqueue_puts_a_job_on_its_queue(fake_redis: fakeredis.FakeRedis, namespace: str) -> None:
    job = make_handler(fake_redis, namespace).enqueue(address="a@b.c")
    assert fake_redis.lrange(f"{namespace}:jobs:send_email", 0, -1) == [job.to_json().encode()]
    assert job.args == {"address": "a@b.c"}


def test_job_handler_enqueue_in_schedules_a_job(fake_redis: fakeredis.FakeRedis, namespace: str) -> None:
    job = make_handler(fake_redis, namespace).enqueue_in(60, address="a@b.c")
    assert isinstance(job, ScheduledJob) and job.run_at == NOW + 60
    assert fake_redis.zrange(f"{namespace}:scheduled", 0, -1, withscores=True) == [(job.to_json().encode(), NOW + 60)]


def test_job_handler_accepts_args_named_like_its_parameters(fake_redis: fakeredis.FakeRedis, namespace: str) -> None:
    handler = make_handler(fake_redis, namespace)
    assert handler.enqueue_in(60, seconds=5).args == {"seconds": 5}  # type: ignore[misc]
    assert handler.enqueue(self="me").args == {"self": "me"}


def test_job_handler_repr_names_the_job() -> None:
    handler = JobHandler("send_email", send_email, JobOptions(), lambda: None)  # type: ignore[arg-type,return-value]
    assert "send_email" in repr(handler)
