"""A tiny run of the benchmark harness (workq, its asyncio runs and the raw ceiling, no peers): it keeps the
harness working.

Timings are never asserted here; only that every measurement ran, every job is accounted for, the table and the
document come out, and no key is left behind.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import redis

from benchmarks.measure import Bench
from benchmarks.report import RunInfo, document, summary
from benchmarks.results import CEILING, THREADS_IO, WORKQ
from benchmarks.run import Plan, method, run_suite
from benchmarks.systems import asyncio_systems, workq_systems

SMOKE = Plan(
    jobs=300,
    runs=1,
    latency_jobs=100,
    latency_rate=500.0,
    idle_seconds=0.3,
    memory_jobs=0,
    io_jobs=300,
    settle=0.2,
    peers=False,
    parser_variant=False,
)


def test_smoke_run_measures_everything_and_loses_nothing(redis_url: str, namespace: str, tmp_path: Path) -> None:
    bench = Bench(redis_url, tmp_path, root=namespace, stall_timeout=15.0, settle=SMOKE.settle)

    results = run_suite(bench, SMOKE, workq_systems() | asyncio_systems(None))

    for row in ("enqueue", "enqueue_many", "enqueue_round_trips", "processing", "latency_p50", "latency_p99"):
        assert results.figure(row, WORKQ) is not None, row
    assert results.figure("idle_cpu", WORKQ) is not None
    assert results.figure("processing", CEILING) is not None
    assert results.figure("enqueue", CEILING) is not None
    for row, column in (("io", WORKQ), ("io", THREADS_IO), ("io_raw", CEILING), ("noop_async", WORKQ)):
        assert results.figure(row, column) is not None, (row, column)
    assert results.accounting, "no measurement accounted for its jobs"
    for (row, column), accountings in results.accounting.items():
        for accounting in accountings:
            assert accounting.ran == accounting.expected > 0, (row, column, accounting)
            assert accounting.duplicates == 0, (row, column, accounting)
    assert not results.notes.get(("processing", WORKQ))

    table = summary(results)
    assert "| processing, 1 process, 10 threads (jobs/s) ↑ |" in table
    assert "workq ÷ ceiling (raw redis-py)" in table
    info = RunInfo("smoke", "today", "0 min", {"CPU": "test"}, method(SMOKE, redis_url))
    markdown = document(results, info)
    assert "## Targets" in markdown and "## Every job ran" in markdown
    assert "issue 14: I/O-bound ≥ 90% of the 2,000 jobs/s ceiling" in markdown

    client = redis.Redis.from_url(redis_url)
    assert list(client.scan_iter(match=f"{namespace}:*", count=1000)) == [], "the harness left keys behind"


def test_only_asyncio_measures_issue_14s_figures_and_the_sync_rate_they_are_compared_with(
    redis_url: str, namespace: str, tmp_path: Path
) -> None:
    bench = Bench(redis_url, tmp_path, root=namespace, stall_timeout=15.0, settle=SMOKE.settle)

    results = run_suite(bench, replace(SMOKE, only_asyncio=True), workq_systems() | asyncio_systems(None))

    for row, column in (("processing", WORKQ), ("noop_async", WORKQ), ("io", WORKQ), ("io_raw", CEILING)):
        assert results.figure(row, column) is not None, (row, column)
    for row in ("enqueue", "latency_p50", "idle_cpu"):
        assert results.figure(row, WORKQ) is None, row
    assert results.figure("processing", CEILING) is None, "the no-op ceiling loops are not part of it"
    assert "issue 14: async no-op ≥ workq's sync no-op" in summary(results)
