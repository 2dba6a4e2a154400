"""OpenTelemetry tracing (the `otel` extra: opentelemetry-api only; the application brings the SDK and exporter).

After `instrument()`, every enqueue of this process is a PRODUCER span `workq enqueue <name>`, and its context goes
into each job it writes as the extra field `trace_context` (the W3C `traceparent`/`tracestate` headers, written by
the global propagator). Every run is a CONSUMER span `workq run <name>` whose parent is that enqueue span, so the
runs of a retried job are all children of its one enqueue, in its trace. gocraft/work workers ignore the field
(and drop it when they file the job again); workq keeps it through retry, dead and requeue.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from workq import instrumentation
from workq.distribution import install_hint
from workq.errors import Retry, WorkqError
from workq.job import Job

try:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as missing:
    raise WorkqError(f"tracing needs opentelemetry-api: {install_hint('otel')} ({missing})") from None

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer, TracerProvider
    from opentelemetry.util.types import AttributeValue

TRACE_CONTEXT_FIELD = "trace_context"
"""The job field holding the enqueuing span's context: a JSON object of string headers."""
MESSAGING_SYSTEM = "workq"


def instrument(tracer_provider: TracerProvider | None = None) -> None:
    """Trace every enqueue and run of this process, in pools and enqueuers built before or after the call.

    Spans go to `tracer_provider`, or to the global one (set with the SDK's `trace.set_tracer_provider`).
    Calling it again replaces the provider.
    """
    tracer = trace.get_tracer(__name__, _workq_version(), tracer_provider=tracer_provider)
    tracing = _Tracing(tracer)
    instrumentation.install(run=tracing.running, enqueue=tracing.enqueuing, log_fields=_current_span_ids)


def uninstrument() -> None:
    """Stop tracing: enqueues write no `trace_context`, runs make no span."""
    instrumentation.uninstall()


class _Tracing:
    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    @contextmanager
    def enqueuing(self, jobs: Sequence[Job]) -> Iterator[None]:
        """One span per enqueue call (an `enqueue_many` batch included); its context goes into every job."""
        name = jobs[0].name
        attributes: dict[str, AttributeValue] = {
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.operation.type": "send",
            "messaging.operation.name": "enqueue",
            "messaging.destination.name": name,
            "workq.job.name": name,
        }
        if len(jobs) == 1:
            attributes.update({"messaging.message.id": jobs[0].id, "workq.job.id": jobs[0].id})
        else:
            attributes["messaging.batch.message_count"] = len(jobs)
        with self._tracer.start_as_current_span(f"workq enqueue {name}", kind=SpanKind.PRODUCER, attributes=attributes):
            headers: dict[str, str] = {}
            propagate.inject(headers)
            if headers:  # empty when no SDK records spans: the jobs stay as they were
                for job in jobs:
                    job.extra[TRACE_CONTEXT_FIELD] = dict(headers)
            yield

    @contextmanager
    def running(self, job: Job) -> Iterator[None]:
        """A span around the rest of the chain, current inside it: an exception (not `Retry`, which only
        reschedules) is recorded and sets the span's status to error."""
        attempt = job.fails + 1
        attributes: dict[str, AttributeValue] = {
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "run",
            "messaging.destination.name": job.name,
            "messaging.message.id": job.id,
            "workq.job.name": job.name,
            "workq.job.id": job.id,
            "workq.job.attempt": attempt,
        }
        with self._tracer.start_as_current_span(
            f"workq run {job.name}",
            context=propagate.extract(_headers(job)),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield
            except Retry as retry:
                span.set_attribute("workq.job.rescheduled_in", retry.in_seconds)
                raise
            except BaseException as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                raise


def _current_span_ids() -> dict[str, str]:
    """`trace_id` and `span_id` of the current span, as trace backends print them (hex), for JSON log lines."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}


def _headers(job: Job) -> dict[str, str]:
    """The job's trace headers; anything else in the field (another writer's, a corrupt job) is ignored."""
    field = job.extra.get(TRACE_CONTEXT_FIELD)
    if not isinstance(field, dict):
        return {}
    return {key: value for key, value in field.items() if isinstance(key, str) and isinstance(value, str)}


def _workq_version() -> str:
    try:
        return importlib.metadata.version("workq")
    except importlib.metadata.PackageNotFoundError:
        return "0"
