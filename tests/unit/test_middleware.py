"""Middleware chains: registration order, code around next(), short-circuit and errors."""

from __future__ import annotations

import pytest

from workq.job import Job
from workq.middleware import Middleware, Next, build_chain


def recording(log: list[str], label: str) -> Middleware:
    def middleware(job: Job, next: Next) -> None:
        log.append(f"{label} before")
        next()
        log.append(f"{label} after")

    return middleware


def test_middlewares_run_in_registration_order_around_the_handler() -> None:
    log: list[str] = []
    chain = build_chain([recording(log, "first"), recording(log, "second")], lambda job: log.append("handler"))
    chain(Job(name="n"))
    assert log == ["first before", "second before", "handler", "second after", "first after"]


def test_without_middlewares_the_handler_runs() -> None:
    seen: list[Job] = []
    job = Job(name="n")
    build_chain([], seen.append)(job)
    assert seen == [job]


def test_every_middleware_and_the_handler_get_the_same_job() -> None:
    seen: list[Job] = []

    def remember(job: Job, next: Next) -> None:
        seen.append(job)
        next()

    job = Job(name="n")
    build_chain([remember, remember], seen.append)(job)
    assert seen == [job, job, job]


def test_middleware_not_calling_next_stops_the_chain() -> None:
    log: list[str] = []

    def stop(job: Job, next: Next) -> None:
        log.append("stop")

    build_chain([stop, recording(log, "later")], lambda job: log.append("handler"))(Job(name="n"))
    assert log == ["stop"]


def test_exception_from_a_middleware_propagates_and_skips_the_rest() -> None:
    log: list[str] = []

    def refuse(job: Job, next: Next) -> None:
        raise PermissionError("no")

    chain = build_chain([recording(log, "outer"), refuse], lambda job: log.append("handler"))
    with pytest.raises(PermissionError):
        chain(Job(name="n"))
    assert log == ["outer before"]


def test_exception_from_the_handler_reaches_the_middlewares() -> None:
    caught: list[BaseException] = []

    def catch(job: Job, next: Next) -> None:
        try:
            next()
        except ValueError as exc:
            caught.append(exc)
            raise

    def handler(job: Job) -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        build_chain([catch], handler)(Job(name="n"))
    assert len(caught) == 1


def test_a_middleware_may_change_the_job_before_the_handler() -> None:
    def tag(job: Job, next: Next) -> None:
        job.args["tagged"] = True
        next()

    seen: list[bool] = []
    build_chain([tag], lambda job: seen.append(job.arg_bool("tagged")))(Job(name="n"))
    assert seen == [True]
