"""The benchmark job for RQ workers (`rq worker`, keys under $RQ_KEY_PREFIX)."""

from __future__ import annotations

from benchmarks.effect import record_run

NOOP = "benchmarks.apps.rq_app.noop"
"""The import path RQ stores in each job."""


def noop(number: int, stamp: float | None = None) -> None:
    record_run(number, stamp)
