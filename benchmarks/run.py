"""The benchmark suite: `python -m benchmarks.run [--jobs 20000] [--runs 3] [--quick] [--profile] [--only asyncio]`.

In one run, against the Redis at $WORKQ_REDIS_URL (default redis://127.0.0.1:6379/0), measures workq, RQ
(SimpleWorker and the forking Worker), Dramatiq, arq, saq and Huey (each with its defaults and with the one setting a
tuned deployment changes) and a raw redis-py ceiling on the same no-op job: enqueue rates, processing rate, latency
from enqueue to handler start, idle CPU and workq's memory over a long run; and issue 14's asyncio figures: an
I/O-bound job (`await asyncio.sleep(0.05)`, 100 in flight) on workq's async handlers, on workq's thread workers, on
arq and on saq, and the no-op job as an async handler. Prints a markdown table and writes
docs/benchmarks.md. The peers run from .bench-venv (arq and saq from .bench-venv-async), created on first use.
`--only asyncio` measures issue 14's figures alone (and workq's sync no-op rate they are compared with): printed,
and written only to an explicit `--output`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TypeVar

from benchmarks.apps.io_job import CEILING as IO_CEILING
from benchmarks.apps.io_job import IN_FLIGHT, IO_SECONDS
from benchmarks.machine import describe, load_average, workq_commit
from benchmarks.measure import Bench, MeasurementFailed
from benchmarks.peer_venv import BENCH_VENV, ROOT, ensure_async_peer_venv, ensure_peer_venv
from benchmarks.profiling import VIEWS, profile_processing, summarise
from benchmarks.report import RunInfo, document, summary
from benchmarks.results import CEILING, PARSER_VARIANT, PEERS, THREADS_IO, WORKQ, Results
from benchmarks.systems import (
    CONCURRENCY,
    System,
    asyncio_peer_systems,
    asyncio_systems,
    has_hiredis,
    peer_systems,
    workq_systems,
    workq_worker_has,
    workq_worker_pinned,
)

DEFAULT_OUTPUT = ROOT / "docs" / "benchmarks.md"
_T = TypeVar("_T")


@dataclass(frozen=True)
class Plan:
    """Sizes of one benchmark run. Slow peers get fewer jobs: a rate is a rate once the run lasts seconds."""

    jobs: int = 20_000
    runs: int = 3
    latency_jobs: int = 2_000
    latency_rate: float = 200.0
    idle_seconds: float = 30.0
    memory_jobs: int = 200_000
    rq_simple_jobs: int = 5_000
    rq_fork_jobs: int = 1_000
    rq_fork_latency_jobs: int = 400
    io_jobs: int = 10_000
    """Jobs of each I/O-bound run (issue 14 asks for 10,000)."""
    settle: float = 2.0
    peers: bool = True
    parser_variant: bool = True
    profile: bool = False
    only_asyncio: bool = False
    """Issue 14's figures and workq's sync no-op processing rate only (no enqueue, latency, idle, memory)."""

    @classmethod
    def quick(cls, jobs: int | None, runs: int, **flags: bool) -> Plan:
        return cls(
            jobs=jobs or 5_000,
            runs=runs,
            latency_jobs=400,
            idle_seconds=5.0,
            memory_jobs=20_000,
            rq_simple_jobs=1_000,
            rq_fork_jobs=200,
            rq_fork_latency_jobs=100,
            **flags,
        )

    def processing_jobs(self, system: System) -> int:
        caps = {"rq-simple": self.rq_simple_jobs, "rq-fork": self.rq_fork_jobs}
        return min(self.jobs, caps.get(system.key, self.jobs))

    def latency_jobs_for(self, system: System) -> int:
        return self.rq_fork_latency_jobs if system.key == "rq-fork" else self.latency_jobs


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def attempt(results: Results, row: str, column: str, what: str, measure: Callable[[], _T]) -> _T | None:
    """Run one measurement; a failure is logged and noted in its cell instead of ending the suite."""
    try:
        return measure()
    except MeasurementFailed as exc:
        log(f"  {what}: FAILED: {exc}")
        results.note(row, column, "failed (see log)")
        return None


def run_suite(bench: Bench, plan: Plan, systems: dict[str, System], results: Results | None = None) -> Results:
    """Every measurement `plan` asks for, `plan.runs` times, interleaved so that drift hits every system alike."""
    results = results if results is not None else Results()
    if PARSER_VARIANT in systems:
        results.labels[PARSER_VARIANT] = systems[PARSER_VARIANT].label
    workq = systems[WORKQ]
    two_processes = workq_worker_has("--processes", workq.interpreter.python)
    if not two_processes:
        results.note("processing_2", WORKQ, "n/a: `workq worker` has no `--processes`")
    pinned = two_processes and workq_worker_has("--pin-cpus", workq.interpreter.python)
    if two_processes and not pinned:
        results.note("processing_2_pinned", WORKQ, "n/a: `workq worker` has no `--pin-cpus`")
    several = [(workq, "processing_2")] if two_processes else []
    if pinned:
        several.append((replace(workq, worker=workq_worker_pinned), "processing_2_pinned"))
    for run in range(1, plan.runs + 1):
        log(f"run {run}/{plan.runs}")
        if plan.only_asyncio:
            _processing_round(bench, plan, {WORKQ: workq}, results, several=[])
            _asyncio_round(bench, plan, systems, results)
            continue
        _enqueue_round(bench, plan, systems, results)
        _processing_round(bench, plan, systems, results, several)
        _asyncio_round(bench, plan, systems, results)
        _latency_round(bench, plan, systems, results)
        if plan.idle_seconds > 0:
            _idle_round(bench, plan, systems, results)
    if plan.memory_jobs > 0 and not plan.only_asyncio:
        _memory(bench, plan, workq, results)
    if plan.profile:
        _profile(bench, plan, systems["io-workq"] if plan.only_asyncio else workq, results)
    return results


def _column(system: System) -> str:
    return CEILING if system.key.startswith("ceiling") else system.key


def _enqueue_round(bench: Bench, plan: Plan, systems: dict[str, System], results: Results) -> None:
    producers = (WORKQ, PARSER_VARIANT, "ceiling-1", "rq-simple", "dramatiq", "arq", "saq", "saq-tuned", "huey")
    feeders = [key for key in producers if key in systems]
    for key in feeders:
        system, column = systems[key], _column(systems[key])
        for mode, row in (("one", "enqueue"), ("many", "enqueue_many")):
            what = f"{row} {system.label}"
            try:
                sample = bench.enqueue(system, mode, plan.jobs)
            except MeasurementFailed as exc:
                log(f"  {what}: FAILED: {exc}")
                results.note(row, column, "failed (see log)")
                continue
            if sample is None:
                results.note(row, column, "n/a: no bulk enqueue")
                continue
            results.add(row, column, sample.jobs_per_second)
            if mode == "one" and sample.round_trips_per_job > 0:
                results.add("enqueue_round_trips", column, sample.round_trips_per_job)
            elif mode == "one":
                results.note("enqueue_round_trips", column, "not counted (redis.asyncio)")
            log(f"  {what}: {sample.jobs_per_second:,.0f} jobs/s, {sample.round_trips_per_job:.3f} round trips/job")
    for key, same_as in (("rq-fork", "SimpleWorker"), ("arq-tuned", "defaults"), ("huey-tuned", "defaults")):
        if key in systems:
            for row in ("enqueue", "enqueue_many", "enqueue_round_trips"):
                results.note(row, key, f"as {same_as}")


def _processing_round(
    bench: Bench, plan: Plan, systems: dict[str, System], results: Results, several: list[tuple[System, str]]
) -> None:
    """Ceiling variants are kept under their own keys (`ceiling-1`, `ceiling-10`): Results picks the faster.
    `several`: workq variants run as 2 processes, each with its row, right after workq's one-process run."""
    order = [WORKQ, PARSER_VARIANT, "ceiling-1", "ceiling-10", *PEERS]
    runs = [(systems[key], 1, "processing") for key in order if key in systems]
    runs[1:1] = [(system, 2, row) for system, row in several]
    for system, processes, row in runs:
        jobs = plan.processing_jobs(system)
        what = f"{row} {system.label} ({jobs:,} jobs)"
        measure = partial(bench.processing, system, jobs, processes)
        sample = attempt(results, row, system.key, what, measure)
        if sample is None:
            continue
        results.add(row, system.key, sample.jobs_per_second, sample.accounting)
        if processes == 1:
            results.add("worker_cpu", system.key, sample.cpu_us_per_job)
            results.add("redis_cpu", system.key, sample.redis_cpu_us_per_job)
        log(
            f"  {what}: {sample.jobs_per_second:,.0f} jobs/s, worker {sample.cpu_us_per_job:,.0f} µs CPU/job, "
            f"lost {sample.accounting.lost}, duplicates {sample.accounting.duplicates}"
        )


ASYNCIO_RUNS = [
    ("noop-workq-async", "noop_async", WORKQ),
    ("io-workq", "io", WORKQ),
    ("io-ceiling", "io_raw", CEILING),
    ("io-workq-threads", "io", THREADS_IO),
    ("io-arq", "io", "arq"),
    ("io-saq", "io", "saq"),
]
"""(system, row, column) of issue 14's measurements."""


def _asyncio_round(bench: Bench, plan: Plan, systems: dict[str, System], results: Results) -> None:
    """The no-op job as an async handler (`plan.jobs`), and the I/O-bound job (`plan.io_jobs`) on each system."""
    if "io-workq" in systems:
        results.add("io", CEILING, IO_CEILING)
    for key, row, column in ASYNCIO_RUNS:
        if key not in systems:
            continue
        system = systems[key]
        jobs = plan.jobs if row == "noop_async" else plan.io_jobs
        what = f"{row} {system.label} ({jobs:,} jobs)"
        sample = attempt(results, row, column, what, partial(bench.processing, system, jobs))
        if sample is None:
            continue
        results.add(row, column, sample.jobs_per_second, sample.accounting)
        log(
            f"  {what}: {sample.jobs_per_second:,.0f} jobs/s, worker {sample.cpu_us_per_job:,.0f} µs CPU/job, "
            f"lost {sample.accounting.lost}, duplicates {sample.accounting.duplicates}"
        )


def _latency_round(bench: Bench, plan: Plan, systems: dict[str, System], results: Results) -> None:
    for key in (WORKQ, *PEERS):
        if key not in systems:
            continue
        system, jobs = systems[key], plan.latency_jobs_for(systems[key])
        what = f"latency {system.label} ({jobs:,} jobs at {plan.latency_rate:.0f}/s)"
        sample = attempt(results, "latency_p50", key, what, partial(bench.latency, system, jobs, plan.latency_rate))
        if sample is None:
            continue
        results.add("latency_p50", key, sample.p50_ms, sample.accounting)
        results.add("latency_p99", key, sample.p99_ms)
        log(f"  {what}: p50 {sample.p50_ms:.2f} ms, p99 {sample.p99_ms:.2f} ms, lost {sample.accounting.lost}")


def _idle_round(bench: Bench, plan: Plan, systems: dict[str, System], results: Results) -> None:
    idle = [systems[key] for key in (WORKQ, *PEERS) if key in systems]
    what = f"idle CPU over {plan.idle_seconds:.0f} s ({', '.join(system.label for system in idle)} side by side)"
    percents = attempt(results, "idle_cpu", WORKQ, what, partial(bench.idle_cpu, idle, plan.idle_seconds))
    if percents is None:
        return
    for key, percent in percents.items():
        results.add("idle_cpu", key, percent)
    log(f"  {what}: " + ", ".join(f"{key} {percent:.2f}%" for key, percent in percents.items()))


def _memory(bench: Bench, plan: Plan, workq: System, results: Results) -> None:
    what = f"memory of a workq worker over {plan.memory_jobs:,} jobs"
    log(what)
    sample = attempt(results, "rss_end", WORKQ, what, partial(bench.memory, workq, plan.memory_jobs))
    if sample is None:
        return
    megabyte = 1024 * 1024
    results.add("rss_start", WORKQ, sample.start_rss / megabyte)
    results.add("rss_warm", WORKQ, sample.warm_rss / megabyte)
    results.add("rss_end", WORKQ, sample.end_rss / megabyte, sample.accounting)
    log(
        f"  RSS {sample.start_rss / megabyte:.1f} MB at start, {sample.warm_rss / megabyte:.1f} MB after 10%, "
        f"{sample.end_rss / megabyte:.1f} MB at the end (peak {sample.peak_rss / megabyte:.1f}); "
        f"lost {sample.accounting.lost}, duplicates {sample.accounting.duplicates}"
    )


def _profile(bench: Bench, plan: Plan, workq: System, results: Results) -> None:
    py_spy = BENCH_VENV / "bin" / "py-spy"
    summaries = []
    for view in VIEWS:
        log(f"profiling the workq worker with py-spy ({view}) over {plan.jobs:,} jobs")
        try:
            profile = profile_processing(bench, workq, plan.jobs, py_spy, view)
        except (MeasurementFailed, OSError, subprocess.SubprocessError) as exc:
            log(f"  profile FAILED: {exc}")
            summaries.append(f"py-spy could not profile the worker ({view}): {exc}")
            continue
        summaries.append(summarise(profile))
        log(summaries[-1])
    results.profile = "\n".join(summaries)


def method(plan: Plan, redis_url: str) -> list[str]:
    return [
        f"Redis: {redis_url}, shared; every measurement keeps its keys under a prefix of its own and deletes them.",
        "The job: one small argument (its number); the handler makes one round trip recording that it ran: "
        "SADD of its number (a 0 reply counts a duplicate), pipelined in latency runs with an RPUSH of its start "
        "minus the enqueue stamp. Every system runs this same handler, the ceiling loop included.",
        f"Enqueue: one producer process enqueues {plan.jobs:,} jobs, one call each (workq `enqueue`, RQ "
        "`Queue.enqueue`, Dramatiq `actor.send`, arq `enqueue_job`, saq `enqueue`, calling a Huey task, ceiling: "
        "redis-py `LPUSH` of a workq-shaped JSON payload), or in bulk (workq `enqueue_many`, RQ "
        "`Queue.enqueue_many`, ceiling: pipelined `LPUSH` of 1,000 payloads per "
        "command). Round trips are counted as socket writes by redis-py, after one untimed warm-up job.",
        f"Processing: {plan.jobs:,} jobs are queued first (RQ SimpleWorker {plan.rq_simple_jobs:,}, RQ Worker "
        f"{plan.rq_fork_jobs:,}: they are slower and a rate needs only a few seconds), then one worker process "
        f"starts: `workq worker` (concurrency {CONCURRENCY}), `rq worker` (SimpleWorker, and the default Worker "
        f"that forks per job), `dramatiq --processes 1 --threads {CONCURRENCY}`, `huey_consumer` with its default "
        f"single worker thread and with `-w {CONCURRENCY}` (the one setting a Huey deployment changes: everything "
        "else stays at its default, results kept, blocking dequeue), arq and saq with their defaults (10 jobs at "
        "once, async handlers) and with the one setting a busy deployment changes: arq `poll_delay=0.01` (by "
        "default it reads at most 100 jobs per poll and sleeps 0.5 s between polls), saq jobs enqueued with "
        "`ttl=-1` (by default every job's record stays in Redis 10 minutes after its run). The harness looks at "
        "the set "
        "of done jobs every 5 ms; rate = jobs done between the first look that sees one and the look that sees "
        "the last ÷ the time between them, so interpreter start-up is not timed. CPU per job is the worker's "
        "process-tree CPU (and the Redis server's) over the same window.",
        "Ceiling: a raw redis-py loop, LMOVE queue → in-progress list, the same handler, LREM — the fewest round "
        "trips a queue that never holds a job only in memory can make; in 1 thread and in 10 threads, the faster "
        "being the ceiling.",
        f"Latency: a worker is started, runs one warm-up job and is left idle for {plan.settle:.0f} s; then "
        f"{plan.latency_jobs:,} jobs arrive at {plan.latency_rate:.0f}/s, each stamped with time.time() at enqueue "
        "(producer and worker on the same host). RQ Worker gets "
        f"{plan.rq_fork_latency_jobs:,} jobs: it cannot keep up with that rate, so its latency is a growing backlog.",
        f"Idle CPU: all workers started and warmed up with one job, then {plan.idle_seconds:.0f} s side by side, "
        "measured as utime+stime (children included) of each worker's process tree from /proc.",
        f"Memory: RSS of a workq worker idle after start-up, after the first 10% and at the end of one "
        f"{plan.memory_jobs:,}-job run (one run, not a median); the jobs are pushed with `enqueue_many` while it "
        "works.",
        f"asyncio (issue 14): the I/O-bound job waits `await asyncio.sleep({IO_SECONDS})` then records its run "
        f"(the same SADD, on redis.asyncio); {plan.io_jobs:,} jobs queued first, one worker process with "
        f"{IN_FLIGHT} jobs in flight: workq `async def` handler (`async_concurrency={IN_FLIGHT}`), workq sync "
        f"handler with `time.sleep` on `--concurrency {IN_FLIGHT}` threads, arq (`max_jobs={IN_FLIGHT}`), saq "
        f"(`concurrency={IN_FLIGHT}`); arq's and saq's other settings are their defaults (logging at WARNING, "
        f"as for every worker). Ceiling: {IN_FLIGHT} waits of {IO_SECONDS} s at any time = {IO_CEILING:,.0f} "
        f"jobs/s. For context, a raw redis.asyncio loop, {IN_FLIGHT} tasks each LMOVE → the job → LREM "
        "(benchmarks/io_ceiling.py: no batching, three round trips per job), shows what the machine leaves "
        "reachable to a plain async consumer in the same run. Rated like processing (first to last job seen "
        "done). The async no-op row runs the processing "
        f"job ({plan.jobs:,} jobs) as an `async def` handler (async_concurrency {IN_FLIGHT}, record on "
        "redis.asyncio), to compare with workq's sync no-op rate above. arq and saq run from .bench-venv-async "
        "(arq pins redis < 6: redis 5.3.1 there, with hiredis).",
        "Reply parser: RQ, Dramatiq and the ceiling use the same redis-py reply parser as workq's environment "
        "(hiredis or redis-py's own: see the machine table); the extra workq column runs workq with the other one, "
        "through a directory on PYTHONPATH that provides (or hides) hiredis.",
        "Noise: the machine and the Redis server may be shared with other work (see the load average): re-run "
        "before reading small differences.",
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=None, help="jobs per enqueue and processing run (20000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each figure; the median is reported (3)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and a 5 s idle window, for a check")
    parser.add_argument("--profile", action="store_true", help="also profile the workq worker with py-spy")
    parser.add_argument("--no-peers", action="store_true", help="workq and the ceiling only")
    parser.add_argument(
        "--no-parser-variant", action="store_true", help="skip workq with the other parser (hiredis or not)"
    )
    parser.add_argument("--redis-url", default=os.environ.get("WORKQ_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--only", choices=["asyncio"], help="issue 14's figures only (and workq's sync no-op rate)")
    parser.add_argument(
        "--output", type=Path, default=None, help="markdown file to write (docs/benchmarks.md; none with --only)"
    )
    return parser.parse_args(argv)


def _systems(plan: Plan) -> dict[str, System]:
    """The systems `plan` measures, setting up the peers' virtualenvs on first use."""
    venv = None
    if (plan.peers and not plan.only_asyncio) or plan.parser_variant or plan.profile:
        try:
            venv = ensure_peer_venv()
        except (OSError, subprocess.CalledProcessError) as exc:
            log(f"could not set up .bench-venv ({exc}): measuring workq and the ceiling only")
    systems = workq_systems(venv=venv if plan.parser_variant else None)
    if venv is not None and plan.peers and not plan.only_asyncio:
        systems |= peer_systems(venv, hiredis=has_hiredis(systems[WORKQ].interpreter))
    async_venv = None
    if plan.peers:
        try:
            async_venv = ensure_async_peer_venv()
        except (OSError, subprocess.CalledProcessError) as exc:
            log(f"could not set up .bench-venv-async ({exc}): no arq and saq figures")
    systems |= asyncio_systems(async_venv)
    if async_venv is not None:
        systems |= asyncio_peer_systems(async_venv)
    return systems


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    started, date = time.monotonic(), datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    only_asyncio = options.only == "asyncio"
    flags = {
        "peers": not options.no_peers,
        "parser_variant": not options.no_parser_variant and not only_asyncio,
        "profile": options.profile,
        "only_asyncio": only_asyncio,
    }
    if options.quick:
        plan = Plan.quick(options.jobs, options.runs, **flags)
    else:
        plan = Plan(jobs=options.jobs or Plan.jobs, runs=options.runs, **flags)
    systems = _systems(plan)
    workdir = Path(tempfile.mkdtemp(prefix="workq-bench-"))
    bench = Bench(options.redis_url, workdir, settle=plan.settle)
    interpreters = {"workq": systems[WORKQ].interpreter}
    if PARSER_VARIANT in systems:
        interpreters[systems[PARSER_VARIANT].label] = systems[PARSER_VARIANT].interpreter
    if "dramatiq" in systems:
        interpreters["peers, in .bench-venv"] = systems["dramatiq"].interpreter
    if "io-arq" in systems:
        interpreters["arq and saq, in .bench-venv-async"] = systems["io-arq"].interpreter
    machine = describe(bench.client, interpreters)
    load_at_start = load_average()
    log(f"worker logs and profiles in {workdir}")
    results = run_suite(bench, plan, systems)
    machine["load average (1/5/15 min)"] = f"{load_at_start} at start, {load_average()} at the end"
    commit_at_end = workq_commit()
    if commit_at_end != machine["workq commit"]:
        machine["workq commit"] += f" at start, {commit_at_end} at the end: workq changed during the run"
    command = "python -m benchmarks.run " + shlex.join(argv if argv is not None else sys.argv[1:])
    elapsed = time.monotonic() - started
    info = RunInfo(command.strip(), date, f"{elapsed / 60:.1f} min", machine, method(plan, options.redis_url))
    print(summary(results))
    output = options.output or (None if plan.only_asyncio else DEFAULT_OUTPUT)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(document(results, info) + kept_sections(output))
        log(f"wrote {output} ({elapsed:.0f} s)")
    return 0


KEPT_FROM = "## Observability cost"
"""The first heading of what other scripts wrote (benchmarks.observability_cost, benchmarks.job_control_cost and the
A/B sections), kept when this run rewrites the file."""


def kept_sections(output: Path) -> str:
    """The part of `output` from `KEPT_FROM` on ('' when none), to append after a regenerated document."""
    if not output.exists():
        return ""
    text = output.read_text()
    start = text.find(KEPT_FROM)
    return "" if start < 0 else "\n" + text[start:]


if __name__ == "__main__":
    sys.exit(main())
