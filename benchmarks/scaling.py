"""How workq scales with worker processes, and how many one Redis core can feed:
`python -m benchmarks.scaling [--processes 1 2 4] [--jobs 20000] [--runs 3] [--redis-url URL]`.

Runs the no-op processing benchmark (`benchmarks.measure.Bench.processing`: `workq worker --processes N`,
concurrency 10 each, from a full queue) for each process count, interleaved run by run, and prints a markdown table:
jobs/s, its ratio to one process, worker and Redis CPU per job. Redis CPU per job bounds a Redis: one core runs out
at 1e6 / (µs per job) jobs/s, so it feeds that many jobs/s ÷ one process's rate worth of worker processes.

Without --redis-url, a redis-server of its own is started on a free loopback port (nothing saved, killed at the
end): its CPU counts this benchmark's commands only. Worker processes, producers and Redis share this machine's
cores, so the process counts beyond its cores measure contention, not workq.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from benchmarks.measure import Bench, ProcessingSample
from benchmarks.redis_server import private_redis
from benchmarks.systems import CONCURRENCY, workq_systems


@dataclass
class Figures:
    """Every sample of one process count."""

    processes: int
    samples: list[ProcessingSample] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return cast(float, statistics.median(getattr(sample, attribute) for sample in self.samples))


def measure(bench: Bench, counts: list[int], jobs: int, runs: int) -> list[Figures]:
    figures = {count: Figures(count) for count in counts}
    python = Path(sys.executable)
    workq = workq_systems(python)["workq"]
    for run in range(runs):
        order = counts if run % 2 == 0 else counts[::-1]
        for count in order:
            sample = bench.processing(workq, jobs, count)
            figures[count].samples.append(sample)
            print(
                f"run {run + 1}/{runs}, {count} process(es): {sample.jobs_per_second:,.0f} jobs/s, worker "
                f"{sample.cpu_us_per_job:.0f} µs CPU/job, Redis {sample.redis_cpu_us_per_job:.1f} µs CPU/job, "
                f"lost {sample.accounting.lost}, duplicates {sample.accounting.duplicates}",
                file=sys.stderr,
                flush=True,
            )
    return [figures[count] for count in counts]


def table(figures: list[Figures]) -> str:
    """The markdown scaling table; the last column from each row's own Redis CPU per job."""
    first = figures[0].median("jobs_per_second")
    base = first / figures[0].processes
    lines = [
        f"| worker processes (×{CONCURRENCY} threads) | jobs/s | × one process | worker CPU µs/job "
        "| Redis CPU µs/job | jobs/s one Redis core can serve | worker processes one Redis core feeds |",
        "|---|---|---|---|---|---|---|",
    ]
    for figure in figures:
        rate, redis_us = figure.median("jobs_per_second"), figure.median("redis_cpu_us_per_job")
        core_rate = 1e6 / redis_us if redis_us > 0 else float("inf")
        lines.append(
            f"| {figure.processes} | {rate:,.0f} | {rate / first:.2f} "
            f"| {figure.median('cpu_us_per_job'):,.0f} | {redis_us:.1f} | {core_rate:,.0f} | {core_rate / base:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--redis-url", default=None, help="measure against this Redis instead of one of its own")
    options = parser.parse_args(argv)
    with private_redis() if options.redis_url is None else _given(options.redis_url) as url:
        bench = Bench(url, Path(tempfile.mkdtemp(prefix="workq-scaling-")))
        figures = measure(bench, sorted(options.processes), options.jobs, options.runs)
    print(f"{os.cpu_count()} cores, load average {' '.join(f'{load:.2f}' for load in os.getloadavg())} at the end")
    print(table(figures))
    return 0


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    sys.exit(main())
