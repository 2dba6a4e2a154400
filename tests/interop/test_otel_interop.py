"""Traced jobs among gocraft/work pools: the `trace_context` field workq.otel adds is read by gocraft/work's own JSON
parser without complaint (the job runs with its id and args), and a gocraft/work pool that fails the job files it
again without the field (Go's Job struct keeps no unknown fields): documented in README "Observability"."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from interop.fleet import Fleet
from support import wait_until
from workq.otel import TRACE_CONTEXT_FIELD, instrument, uninstrument


@pytest.fixture
def traced() -> Iterator[None]:
    instrument(tracer_provider=TracerProvider())
    yield
    uninstrument()


@pytest.mark.parametrize("version", ["master", "v0.5.1"])
def test_gocraft_work_runs_traced_jobs_and_drops_the_field_on_retry(traced: None, fleet: Fleet, version: str) -> None:
    fleet.go_pool(version, ["traced", "traced_fail"], label=f"go-{version}", fail=["traced_fail"])
    enqueuer = fleet.enqueuer
    jobs = [
        enqueuer.enqueue("traced", {"n": 1}),
        enqueuer.enqueue_unique("traced", {"n": 2}),
        enqueuer.enqueue_in("traced", 1, {"n": 3}),
        *enqueuer.enqueue_many("traced", [{"n": 4}, {"n": 5}]),
    ]
    failing = enqueuer.enqueue("traced_fail", {"n": 6})
    assert all(job is not None and TRACE_CONTEXT_FIELD in job.extra for job in [*jobs, failing])

    runs = fleet.wait_for_runs(len(jobs) + 1, "every traced job to run on the Go pool")
    assert {(run["side"], run["id"], run["args"]["n"]) for run in runs} == {
        (f"go-{version}", job.id, job.args["n"]) for job in [*jobs, failing] if job is not None
    }
    retried = wait_until(lambda: fleet.redis.zrange(f"{fleet.namespace}:retry", 0, -1), what="the Go retry")
    (refiled,) = [json.loads(raw) for raw in retried]
    assert refiled["id"] == failing.id and refiled["fails"] == 1
    assert TRACE_CONTEXT_FIELD not in refiled
