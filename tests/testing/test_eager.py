"""TestHarness(eager=True): a job runs in the enqueuing call as soon as it is due, and its exception propagates."""

from __future__ import annotations

import asyncio

import pytest

from testing.conftest import START, UNREACHABLE
from workq import Enqueuer, Job, WorkerPool, WorkqError
from workq.aio import AsyncEnqueuer
from workq.testing import TestHarness


def test_enqueue_runs_the_job_at_once_and_its_exception_reaches_the_caller(pool: WorkerPool) -> None:
    ran: list[str] = []

    @pool.job("charge", max_fails=2)
    def charge(job: Job) -> None:
        ran.append(job.arg_str("card"))
        if job.arg_str("card") == "declined":
            raise ValueError("card declined")

    with TestHarness(pool, eager=True, start=START) as h:
        charge.enqueue(card="ok")
        assert ran == ["ok"] and h.queued("charge") == []
        with pytest.raises(ValueError, match="card declined"):
            charge.enqueue(card="declined")
        [retrying] = h.retrying()  # filed as a worker files it, then raised
        assert (retrying.fails, retrying.last_err) == (1, "ValueError: card declined")
        with pytest.raises(ValueError, match="card declined"):
            h.advance()  # the retry falls due and runs at once
        assert [job.fails for job in h.dead()] == [2]
    assert ran == ["ok", "declined", "declined"]


def test_every_enqueuer_runs_eagerly_and_delayed_jobs_wait_for_the_clock(pool: WorkerPool) -> None:
    ran: list[int] = []
    pool.job("count", lambda job: ran.append(job.arg_int("n")))
    app_enqueuer = Enqueuer(pool.namespace, "redis://127.0.0.1:1/0")
    with TestHarness(pool, app_enqueuer, eager=True, start=START) as h:
        app_enqueuer.enqueue("count", {"n": 1})
        h.enqueuer.enqueue_many("count", [{"n": 2}, {"n": 3}])
        assert app_enqueuer.enqueue_unique("count", {"n": 4}) is not None
        app_enqueuer.enqueue_in("count", 0, {"n": 5})
        assert ran == [1, 2, 3, 4, 5]
        app_enqueuer.enqueue_in("count", 60, {"n": 6})
        h.advance(59)
        assert ran == [1, 2, 3, 4, 5]
        h.advance(1)
        assert ran == [1, 2, 3, 4, 5, 6]


def test_a_job_enqueued_by_a_handler_runs_inside_it(pool: WorkerPool) -> None:
    order: list[str] = []

    @pool.job("signup")
    def signup(job: Job) -> None:
        order.append("signup starts")
        welcome.enqueue(to=job.arg_str("email"))
        order.append("signup ends")

    @pool.job("welcome")
    def welcome(job: Job) -> None:
        order.append(f"welcome {job.arg_str('to')}")

    with TestHarness(pool, eager=True, start=START):
        signup.enqueue(email="ada@example.com")
    assert order == ["signup starts", "welcome ada@example.com", "signup ends"]


def test_an_enqueue_the_pool_cannot_run_is_refused_loudly(pool: WorkerPool) -> None:
    pool.job("known", lambda job: None)
    with TestHarness(pool, eager=True, start=START) as h:
        with pytest.raises(WorkqError, match="no handler for job 'typo'"):
            h.enqueuer.enqueue("typo")
        assert [job.name for job in h.queued("typo")] == ["typo"]


def test_an_async_enqueuer_is_harnessed_too(pool: WorkerPool) -> None:
    ran: list[str] = []

    @pool.job("notify", max_fails=1)
    def notify(job: Job) -> None:
        if job.arg_str("to") == "nobody":
            raise LookupError("nobody")
        ran.append(job.arg_str("to"))

    web_enqueuer = AsyncEnqueuer(pool.namespace, UNREACHABLE)
    client = web_enqueuer.redis

    async def handle_requests(h: TestHarness) -> None:
        await web_enqueuer.enqueue("notify", {"to": "ada"})
        assert ran == ["ada"]  # eager: ran inside the await
        with pytest.raises(LookupError):
            await web_enqueuer.enqueue("notify", {"to": "nobody"})
        assert (await web_enqueuer.enqueue_in("notify", 30, {"to": "bob"})).run_at == START + 30

    with TestHarness(pool, web_enqueuer, eager=True, start=START) as h:
        asyncio.run(handle_requests(h))
        h.advance(30)
        assert ran == ["ada", "bob"] and [job.last_err for job in h.dead()] == ["LookupError: nobody"]
    assert web_enqueuer.redis is client and web_enqueuer.on_enqueued is None
