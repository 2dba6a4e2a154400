"""Failures against a real Redis: retry with backoff, the dead set, custom and broken backoffs, BaseExceptions,
SystemExit/KeyboardInterrupt and `workq.Retry`."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import pytest

from integration.job_log import JobLog
from integration.namespace_view import Filed, NamespaceView
from integration.pool_factory import PoolFactory
from support import wait_until
from workq import Enqueuer, Job, Retry

FIXED_NOW = float(int(time.time())) + 0.25
"""A frozen clock near real time: retry/scheduled scores become exact, and nothing the pool files comes due."""

DEFAULT_FIRST_RETRY = range(16, 75)
"""Default backoff after the first failure: 1⁴ + 15 + randint(0, 29) × 2 seconds."""


def fail_first_run(log: JobLog, message: str = "flaky") -> Callable[[Job], None]:
    """A handler that records every run and raises on the first one."""

    def handle(job: Job) -> None:
        log.record(job)
        if len(log) == 1:
            raise ValueError(f"{message} on run 1")

    return handle


def wait_for_one(probe: Callable[[], list[Filed]], what: str) -> Filed:
    (member,) = wait_until(probe, what=what)
    return member


def test_a_failed_job_is_retried_and_sees_its_failure(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    pool = make_pool()
    pool.job("flaky", fail_first_run(log, "disk full"), backoff=lambda job: 0)
    enqueued = enqueuer.enqueue("flaky", {"n": 7})

    pool.start()
    first, second = log.wait_for(2)
    pool.drain(timeout=10)

    assert first.id == second.id == enqueued.id
    assert (first.fails, first.last_err) == (0, "")
    assert second.fails == 1
    assert "disk full on run 1" in second.last_err
    assert second.failed_at >= first.enqueued_at
    assert second.enqueued_at >= second.failed_at, "t is reset when the job moves from retry to its queue"
    assert second.args == {"n": 7}
    assert (view.retry(), view.dead()) == ([], [])
    assert view.idle_problems("flaky", pool.pool_id) == []


def test_a_job_out_of_retries_is_dead_with_its_last_error(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    pool = make_pool()

    @pool.job("doomed", max_fails=2, backoff=lambda job: 0)
    def doomed(job: Job) -> None:
        log.record(job)
        raise ValueError(f"disk full on run {len(log)}")

    enqueued = enqueuer.enqueue("doomed", {"n": 7})
    before = int(time.time())
    pool.start()
    dead = wait_for_one(view.dead, "the job to die")
    after = math.ceil(time.time())

    assert len(log) == 2
    fields = dead.fields
    # gocraft/work's fields in its order, then at most workq's extra: the first enqueue time, kept when the requeuer
    # moved `t` to a later second
    assert list(fields)[:7] == ["name", "id", "t", "args", "fails", "err", "failed_at"]
    assert list(fields)[7:] in ([], ["first_enqueued_at"])
    assert (fields["name"], fields["id"], fields["args"], fields["fails"]) == ("doomed", enqueued.id, {"n": 7}, 2)
    assert "disk full on run 2" in fields["err"]
    assert type(fields["failed_at"]) is int and before <= fields["failed_at"] <= after
    assert dead.score == fields["failed_at"]
    assert view.retry() == []
    assert view.idle_problems("doomed", pool.pool_id) == []


def test_max_fails_1_goes_straight_to_dead(make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView) -> None:
    log = JobLog()
    pool = make_pool()
    pool.job("once", fail_first_run(log), max_fails=1)
    enqueued = enqueuer.enqueue("once")

    pool.start()
    dead = wait_for_one(view.dead, "the job to die")
    pool.drain(timeout=10)

    assert (dead.fields["id"], dead.fields["fails"], len(log)) == (enqueued.id, 1, 1)
    assert view.retry() == []
    assert view.idle_problems("once", pool.pool_id) == []


def test_skip_dead_discards_a_job_out_of_retries(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    pool = make_pool(concurrency=1)
    pool.job("discarded", fail_first_run(log), max_fails=1, skip_dead=True)
    enqueuer.enqueue("discarded")

    pool.start()
    log.wait_for(1)
    pool.drain(timeout=10)

    assert len(log) == 1
    assert (view.dead(), view.retry(), view.scheduled()) == ([], [], [])
    assert view.idle_problems("discarded", pool.pool_id) == []


def test_a_custom_backoff_sets_the_retry_time(make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView) -> None:
    log = JobLog()
    backoff_saw: list[int] = []
    pool = make_pool(clock=lambda: FIXED_NOW)

    def backoff(job: Job) -> int:
        backoff_saw.append(job.fails)
        return 1000

    pool.job("slow_retry", fail_first_run(log), backoff=backoff)
    enqueued = enqueuer.enqueue("slow_retry")
    pool.start()
    retry = wait_for_one(view.retry, "the job to be filed for retry")

    assert backoff_saw == [1]
    fields = retry.fields
    # gocraft/work's fields in its order, then at most workq's extra: the first enqueue time, kept when the requeuer
    # moved `t` to a later second
    assert list(fields)[:7] == ["name", "id", "t", "args", "fails", "err", "failed_at"]
    assert list(fields)[7:] in ([], ["first_enqueued_at"])
    assert (fields["id"], fields["fails"], fields["failed_at"]) == (enqueued.id, 1, int(FIXED_NOW))
    assert retry.score == math.ceil(FIXED_NOW + 1000), "no earlier than the backoff after the failure"
    assert view.idle_problems("slow_retry", pool.pool_id) == []


def _raise_in_backoff(job: Job) -> int:
    raise RuntimeError("backoff broke")


@pytest.mark.parametrize(
    "backoff",
    [
        _raise_in_backoff,
        lambda job: None,
        lambda job: "soon",
        lambda job: -5,
        lambda job: True,
        lambda job: float("nan"),
        lambda job: float("inf"),
    ],
    ids=["raises", "None", "str", "negative", "bool", "nan", "inf"],
)
def test_a_broken_backoff_falls_back_to_the_default_curve_and_the_worker_survives(
    backoff: Callable[[Job], int], make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    later = JobLog()
    pool = make_pool(concurrency=1, clock=lambda: FIXED_NOW)
    pool.job("flaky", fail_first_run(log), backoff=backoff)
    pool.job("later", later.record)
    enqueuer.enqueue("flaky")

    pool.start()
    retry = wait_for_one(view.retry, "the job to be filed for retry")
    enqueuer.enqueue("later")
    later.wait_for(1)

    assert retry.fields["failed_at"] == int(FIXED_NOW)
    assert retry.score - math.ceil(FIXED_NOW) in DEFAULT_FIRST_RETRY
    assert view.idle_problems("flaky", pool.pool_id) == []


def test_an_absurd_backoff_does_not_lose_the_job(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    later = JobLog()
    pool = make_pool(concurrency=1, clock=lambda: FIXED_NOW)
    pool.job("flaky", fail_first_run(log), backoff=lambda job: 10**400)
    pool.job("later", later.record)
    enqueuer.enqueue("flaky")

    pool.start()
    log.wait_for(1)
    enqueuer.enqueue("later")
    later.wait_for(1)
    pool.drain(timeout=10)

    assert view.idle_problems("flaky", pool.pool_id) == []
    assert len(view.retry()) == 1


class Boom(BaseException):
    """Not an Exception: a handler raising it still fails its job."""


def test_a_base_exception_subclass_fails_the_job_and_the_worker_goes_on(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    later = JobLog()
    pool = make_pool(concurrency=1)

    @pool.job("explodes")
    def explodes(job: Job) -> None:
        raise Boom("kaput")

    pool.job("later", later.record)
    exploded = enqueuer.enqueue("explodes")
    enqueuer.enqueue("later")
    pool.start()
    later.wait_for(1)
    retry = wait_for_one(view.retry, "the failed job in retry")

    assert (retry.fields["id"], retry.fields["fails"]) == (exploded.id, 1)
    assert "Boom" in retry.fields["err"] and "kaput" in retry.fields["err"]
    assert view.dead() == []
    assert view.idle_problems("explodes", pool.pool_id) == []


@pytest.mark.parametrize("exit_type", [SystemExit, KeyboardInterrupt])
def test_system_exit_in_a_handler_returns_the_job_and_stops_the_pool(
    exit_type: type[BaseException], make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    pool = make_pool(concurrency=1)

    @pool.job("quits")
    def quits(job: Job) -> None:
        log.record(job)
        if job.arg_bool("exit"):
            raise exit_type()

    quitting = enqueuer.enqueue("quits", {"exit": True})
    enqueuer.enqueue("quits", {"exit": False})
    queued_before = view.queued("quits")

    pool.start()
    assert pool.wait_for_stop_request(10)
    stopper = threading.Thread(target=pool.stop)
    stopper.start()
    stopper.join(10)
    assert not stopper.is_alive(), "stop() should return once the worker has put the job back"

    assert [job.id for job in log.jobs] == [quitting.id], "the pool must not fetch after the stop request"
    assert view.queued("quits") == queued_before, "the job is back at the fetching end, byte for byte"
    assert (view.retry(), view.dead()) == ([], [])
    assert view.in_progress("quits", pool.pool_id) == []
    assert view.lock("quits") == 0 and view.lock_info("quits") == {}


def test_retry_reschedules_without_counting_a_failure(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    pool = make_pool(clock=lambda: FIXED_NOW)

    @pool.job("later")
    def later(job: Job) -> None:
        log.record(job)
        raise Retry(in_seconds=30)

    enqueued = enqueuer.enqueue("later", {"n": 1})
    pool.start()
    scheduled = wait_for_one(view.scheduled, "the job in the scheduled set")

    assert scheduled.score == math.ceil(FIXED_NOW + 30)
    fields = scheduled.fields
    assert (fields["id"], fields["args"]) == (enqueued.id, {"n": 1})
    assert "fails" not in fields and "err" not in fields
    assert (view.retry(), view.dead()) == ([], [])
    assert view.idle_problems("later", pool.pool_id) == []


def test_retry_runs_the_job_again_with_no_failure_recorded(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    pool = make_pool()

    @pool.job("again")
    def again(job: Job) -> None:
        log.record(job)
        if len(log) == 1:
            raise Retry(in_seconds=0)

    enqueued = enqueuer.enqueue("again")
    pool.start()
    first, second = log.wait_for(2)
    pool.drain(timeout=10)

    assert first.id == second.id == enqueued.id
    assert (second.fails, second.last_err, second.failed_at) == (0, "", 0)
    assert (view.retry(), view.dead(), view.scheduled()) == ([], [], [])


@pytest.mark.parametrize("delay", [float("inf"), float("nan")], ids=["inf", "nan"])
def test_retry_with_a_non_finite_delay_fails_the_job_instead_of_stranding_it(
    delay: float, make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    log = JobLog()
    pool = make_pool(concurrency=1)

    @pool.job("never")
    def never(job: Job) -> None:
        log.record(job)
        raise Retry(in_seconds=delay)

    enqueuer.enqueue("never")
    pool.start()
    log.wait_for(1)
    pool.drain(timeout=10)

    assert view.idle_problems("never", pool.pool_id) == []
    (retry,) = view.retry()
    assert retry.fields["fails"] == 1 and "ValueError" in retry.fields["err"]
    assert view.scheduled() == []
