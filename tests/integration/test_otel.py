"""workq.otel on real Redis, spans caught by the SDK's in-memory exporter: an enqueue inside an application span
is its child, the run is the enqueue's child in the same trace (each attempt of a retried job too), failures carry
the exception and error status, every enqueue variant of both enqueuers writes the trace context into the stored
job, and without `instrument()` nothing changes."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from integration.namespace_view import NamespaceView
from integration.pool_factory import PoolFactory
from support import wait_until
from workq import ConnectionFailed, Enqueuer, Job
from workq.aio import AsyncEnqueuer
from workq.log_format import configure_logging
from workq.otel import TRACE_CONTEXT_FIELD, instrument, uninstrument


@pytest.fixture
def provider() -> TracerProvider:
    return TracerProvider()


@pytest.fixture
def spans(provider: TracerProvider) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument(tracer_provider=provider)
    yield exporter
    uninstrument()


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def traceparent_of(span: ReadableSpan) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def test_the_run_is_a_child_of_the_enqueue_in_the_callers_trace(
    spans: InMemorySpanExporter, provider: TracerProvider, make_pool: PoolFactory, enqueuer: Enqueuer
) -> None:
    pool = make_pool()
    ran = threading.Event()

    @pool.job("email")
    def email(job: Job) -> None:
        with provider.get_tracer("app").start_as_current_span("render"):
            ran.set()

    with provider.get_tracer("app").start_as_current_span("POST /signup"):
        job = enqueuer.enqueue("email", {"to": "a@example.com"})
    (stored,) = NamespaceView(enqueuer.redis, enqueuer.namespace).queued("email")
    pool.start()
    assert ran.wait(10)
    wait_until(lambda: named(spans, "workq run email"), what="the run span")

    (request,) = named(spans, "POST /signup")
    (enqueue,) = named(spans, "workq enqueue email")
    (run,) = named(spans, "workq run email")
    (render,) = named(spans, "render")
    assert enqueue.parent is not None and enqueue.parent.span_id == request.context.span_id
    assert run.parent is not None and run.parent.span_id == enqueue.context.span_id
    assert render.parent is not None and render.parent.span_id == run.context.span_id
    assert len({span.context.trace_id for span in (request, enqueue, run, render)}) == 1
    assert json.loads(stored)[TRACE_CONTEXT_FIELD] == {"traceparent": traceparent_of(enqueue)}
    assert (enqueue.kind, run.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert enqueue.attributes is not None and run.attributes is not None
    assert enqueue.attributes["messaging.message.id"] == job.id == run.attributes["workq.job.id"]
    assert dict(run.attributes) == {
        "messaging.system": "workq",
        "messaging.operation.type": "process",
        "messaging.operation.name": "run",
        "messaging.destination.name": "email",
        "messaging.message.id": job.id,
        "workq.job.name": "email",
        "workq.job.id": job.id,
        "workq.job.attempt": 1,
    }
    assert run.status.status_code == StatusCode.UNSET


def test_each_attempt_of_a_failing_job_is_an_error_child_of_its_enqueue_and_the_dead_job_keeps_the_context(
    spans: InMemorySpanExporter, make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    pool = make_pool()

    @pool.job("charge", max_fails=3, backoff=lambda job: 0)
    def charge(job: Job) -> None:
        if job.fails < 2:
            raise RuntimeError(f"card declined (attempt {job.fails + 1})")
        raise ValueError("gave up")

    enqueuer.enqueue("charge", {"amount": 5})
    pool.start()
    (dead,) = wait_until(view.dead, 30, what="the job in the dead set")
    wait_until(lambda: len(named(spans, "workq run charge")) == 3, what="three run spans")

    (enqueue,) = named(spans, "workq enqueue charge")
    runs = sorted(named(spans, "workq run charge"), key=lambda span: span.start_time or 0)
    assert [run.attributes and run.attributes["workq.job.attempt"] for run in runs] == [1, 2, 3]
    for run in runs:
        assert run.context.trace_id == enqueue.context.trace_id
        assert run.parent is not None and run.parent.span_id == enqueue.context.span_id
        assert run.status.status_code == StatusCode.ERROR
        (event,) = run.events
        assert event.name == "exception" and event.attributes is not None
    assert [run.events[0].attributes and run.events[0].attributes["exception.type"] for run in runs] == [
        "RuntimeError",
        "RuntimeError",
        "ValueError",
    ]
    assert runs[0].status.description == "RuntimeError: card declined (attempt 1)"
    assert dead.fields[TRACE_CONTEXT_FIELD] == {"traceparent": traceparent_of(enqueue)}
    assert dead.fields["fails"] == 3


def test_a_retry_then_success_ends_in_an_ok_second_attempt(
    spans: InMemorySpanExporter, make_pool: PoolFactory, enqueuer: Enqueuer
) -> None:
    pool = make_pool()
    done = threading.Event()

    @pool.job("sync", max_fails=5, backoff=lambda job: 0)
    def sync(job: Job) -> None:
        if job.fails == 0:
            raise ConnectionError("upstream down")
        done.set()

    enqueuer.enqueue("sync")
    pool.start()
    assert done.wait(30)
    wait_until(lambda: len(named(spans, "workq run sync")) == 2, what="two run spans")
    (enqueue,) = named(spans, "workq enqueue sync")
    first, second = sorted(named(spans, "workq run sync"), key=lambda span: span.start_time or 0)
    assert (first.status.status_code, second.status.status_code) == (StatusCode.ERROR, StatusCode.UNSET)
    assert {first.parent and first.parent.span_id, second.parent and second.parent.span_id} == {enqueue.context.span_id}


SYNC_AND_ASYNC_VARIANTS: dict[str, tuple[Any, ...]] = {
    "enqueue": ("v", {"a": 1}),
    "enqueue_in": ("v", 90, {"a": 1}),
    "enqueue_unique": ("v", {"a": 1}),
    "enqueue_unique_in": ("v", 90, {"a": 1}),
    "enqueue_unique_by_key": ("v", {"a": 1}, {"k": 1}),
    "enqueue_unique_in_by_key": ("v", 90, {"a": 1}, {"k": 1}),
    "enqueue_many": ("v", [{"a": 1}, {"a": 2}, None]),
}


@pytest.mark.parametrize("asynchronous", [False, True], ids=["Enqueuer", "AsyncEnqueuer"])
@pytest.mark.parametrize("method", sorted(SYNC_AND_ASYNC_VARIANTS))
def test_every_enqueue_variant_stores_its_span_context(
    spans: InMemorySpanExporter,
    method: str,
    asynchronous: bool,
    redis_url: str,
    view: NamespaceView,
) -> None:
    args, namespace = SYNC_AND_ASYNC_VARIANTS[method], view.namespace
    if asynchronous:

        async def enqueue() -> Any:
            async with AsyncEnqueuer(namespace, redis_url) as producer:
                return await getattr(producer, method)(*args)

        returned = asyncio.run(enqueue())
    else:
        returned = getattr(Enqueuer(namespace, view.client), method)(*args)

    (enqueue_span,) = named(spans, "workq enqueue v")
    assert enqueue_span.kind == SpanKind.PRODUCER and enqueue_span.attributes is not None
    stored = [json.loads(raw) for raw in view.queued("v")] + [filed.fields for filed in view.scheduled()]
    assert len(stored) == (3 if method == "enqueue_many" else 1)
    assert all(job[TRACE_CONTEXT_FIELD] == {"traceparent": traceparent_of(enqueue_span)} for job in stored)
    jobs = returned if isinstance(returned, list) else [returned]
    assert all(job.extra[TRACE_CONTEXT_FIELD] == {"traceparent": traceparent_of(enqueue_span)} for job in jobs)
    if method == "enqueue_many":
        assert enqueue_span.attributes["messaging.batch.message_count"] == 3
    else:
        assert enqueue_span.attributes["workq.job.id"] == stored[0]["id"]


def test_a_failed_enqueue_is_an_error_span(spans: InMemorySpanExporter, namespace: str) -> None:
    unreachable = redis.Redis(port=1, socket_connect_timeout=1)
    with pytest.raises(ConnectionFailed):
        Enqueuer(namespace, unreachable).enqueue("v", {"a": 1})

    (enqueue_span,) = named(spans, "workq enqueue v")
    assert enqueue_span.status.status_code == StatusCode.ERROR
    assert [event.name for event in enqueue_span.events] == ["exception"]


def test_a_job_without_or_with_a_garbled_context_runs_in_a_new_trace(
    spans: InMemorySpanExporter, make_pool: PoolFactory, redis_client: redis.Redis, namespace: str
) -> None:
    pool = make_pool()
    ran: list[str] = []

    @pool.job("plain")
    def plain(job: Job) -> None:
        ran.append(job.id)

    redis_client.lpush(f"{namespace}:jobs:plain", '{"name":"plain","id":"a1","t":1,"args":{}}')
    garbled = {"traceparent": "00-zz-01", "tracestate": 7}
    garbled_job = {"name": "plain", "id": "a2", "t": 1, "args": {}, "trace_context": garbled}
    redis_client.lpush(f"{namespace}:jobs:plain", json.dumps(garbled_job))
    pool.start()
    wait_until(lambda: len(named(spans, "workq run plain")) == 2, what="two run spans")
    assert sorted(ran) == ["a1", "a2"]
    assert all(span.parent is None for span in named(spans, "workq run plain"))


def test_without_instrument_jobs_carry_nothing_and_runs_make_no_span(
    provider: TracerProvider, make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument(tracer_provider=provider)
    uninstrument()
    pool = make_pool()
    ran = threading.Event()
    pool.job("quiet")(lambda job: ran.set())
    pool.start()

    with provider.get_tracer("app").start_as_current_span("caller"):
        enqueuer.enqueue("quiet")
    assert ran.wait(10)
    pool.drain(10)
    assert [span.name for span in exporter.get_finished_spans()] == ["caller"]
    assert view.queued("quiet") == []


def test_instrument_reaches_a_pool_started_before_it(
    provider: TracerProvider, make_pool: PoolFactory, enqueuer: Enqueuer
) -> None:
    pool = make_pool()
    ran = threading.Event()
    pool.job("early")(lambda job: ran.set())
    pool.start()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument(tracer_provider=provider)
    try:
        enqueuer.enqueue("early")
        assert ran.wait(10)
        wait_until(lambda: named(exporter, "workq run early"), what="the run span")
    finally:
        uninstrument()


@pytest.mark.usefixtures("root_logging")
def test_json_log_lines_inside_a_run_carry_its_trace_and_span(
    spans: InMemorySpanExporter, make_pool: PoolFactory, enqueuer: Enqueuer
) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    pool = make_pool()
    ran = threading.Event()

    @pool.job("traced_log")
    def traced_log(job: Job) -> None:
        logging.getLogger("app").info("inside")
        ran.set()

    pool.start()
    enqueuer.enqueue("traced_log")
    assert ran.wait(10)
    wait_until(lambda: named(spans, "workq run traced_log"), what="the run span")
    logging.getLogger("app").info("outside")

    lines = {line["message"]: line for line in map(json.loads, stream.getvalue().splitlines())}
    (run,) = named(spans, "workq run traced_log")
    assert lines["inside"]["trace_id"] == f"{run.context.trace_id:032x}"
    assert lines["inside"]["span_id"] == f"{run.context.span_id:016x}"
    assert "trace_id" not in lines["outside"]


@pytest.mark.usefixtures("root_logging")
def test_an_async_handler_runs_in_its_span_and_its_failure_line_names_the_job(
    spans: InMemorySpanExporter, provider: TracerProvider, make_pool: PoolFactory, enqueuer: Enqueuer
) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    pool = make_pool()
    done = threading.Event()

    @pool.job("fetch", max_fails=3, backoff=lambda job: 0)
    async def fetch(job: Job) -> None:
        with provider.get_tracer("app").start_as_current_span("GET upstream"):
            await asyncio.sleep(0)
        if job.fails == 0:
            raise TimeoutError("upstream slow")
        done.set()

    pool.start()
    job = enqueuer.enqueue("fetch")
    assert done.wait(30)
    wait_until(lambda: len(named(spans, "workq run fetch")) == 2, what="two run spans")

    (enqueue,) = named(spans, "workq enqueue fetch")
    first, second = sorted(named(spans, "workq run fetch"), key=lambda span: span.start_time or 0)
    assert {first.parent and first.parent.span_id, second.parent and second.parent.span_id} == {enqueue.context.span_id}
    assert (first.status.status_code, second.status.status_code) == (StatusCode.ERROR, StatusCode.UNSET)
    inner = sorted(named(spans, "GET upstream"), key=lambda span: span.start_time or 0)
    assert [span.parent and span.parent.span_id for span in inner] == [first.context.span_id, second.context.span_id]
    (retrying,) = [
        line for line in map(json.loads, stream.getvalue().splitlines()) if "retrying in" in str(line["message"])
    ]
    assert (retrying["job_name"], retrying["job_id"], retrying["attempt"]) == ("fetch", job.id, 1)
