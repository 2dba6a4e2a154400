"""What observability costs the hot path: `python -m benchmarks.observability_cost [--jobs 20000] [--rounds 5]`.

One `workq worker` process (10 threads) drains `--jobs` no-op jobs enqueued beforehand; the rate is timed from
the 10% to the 100% mark of the ack script's daily `processed` count (polled every 2 ms), so start-up is left
out. Variants, run in turn in every round (each round in a rotated order, so a drift of the shared machine's load
spreads over all of them):

- `metrics off`: this tree, as shipped (the run tally, log context and instrumentation hook middlewares built in);
- `metrics on`: the same with `--metrics-port` (prometheus_client's counters and histogram on every run);
- `no built-ins`: this tree with the three built-in middlewares taken out of the chain (a temporary worktree of
  HEAD, one line patched), to price them;
- `before f588875`: the commit before the tally and metrics landed (a temporary worktree), for reference.

Needs the Redis of $WORKQ_REDIS_URL (default redis://127.0.0.1:6379/0); each run uses a namespace of its own and
deletes it. Prints a markdown section (median jobs/s and worker CPU per job, the cost against `metrics off`);
`--write docs/benchmarks.md` puts it in place of that file's "Observability cost" section.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import redis

from benchmarks.redis_server import free_port
from benchmarks.worker_process import cpu_seconds
from workq import Enqueuer, Job, instrumentation
from workq.keys import Keys
from workq.log_format import job_context
from workq.metrics import JobMetrics
from workq.middleware import Around, JobChain, Middleware, build_chain
from workq.throughput import RunTally

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "benchmarks" / "apps"
REDIS_URL = os.environ.get("WORKQ_REDIS_URL", "redis://127.0.0.1:6379/0")
BEFORE_OBSERVABILITY = "f588875~1"
BUILT_INS = "Around(tally.counting), Around(job_context), Around(instrumentation.running), "
POLL = 0.002


@dataclass(frozen=True)
class Variant:
    label: str
    tree: Path
    options: tuple[str, ...] = ()
    """`workq worker` options."""
    environment: tuple[tuple[str, str], ...] = ()
    """Extra environment of the worker process (e.g. the no-op job's options, see benchmarks/apps/noop_app.py)."""


@dataclass(frozen=True)
class Measured:
    rate: float
    """Jobs per second."""
    cpu_per_job: float
    """Worker CPU (user + system) per job, µs: less swayed by the other load of a shared machine than the rate."""
    redis_cpu_per_job: float = 0.0
    """Redis server CPU per job, µs (all of the server's work: meaningful on a server of the benchmark's own)."""


def measure(variant: Variant, jobs: int, redis_url: str = REDIS_URL) -> Measured:
    """One worker process draining `jobs` no-op jobs, between the 10% and the 100% mark."""
    namespace = f"bench-obs-{secrets.token_hex(4)}"
    client = redis.Redis.from_url(redis_url)
    env = {**os.environ, **dict(variant.environment), "PYTHONPATH": f"{variant.tree}{os.pathsep}{APPS}"}
    command = [sys.executable, "-m", "workq", "worker", "noop_app:pool", "--redis-url", redis_url]
    try:
        Enqueuer(namespace, client).enqueue_many("noop", [{"n": n} for n in range(jobs)])
        stats_key = Keys(namespace).stats("noop", client.time()[0])
        with tempfile.TemporaryDirectory() as empty:  # cwd: nothing there shadows the tree's workq
            worker = subprocess.Popen(
                [*command, "--namespace", namespace, "--log-level", "WARNING", *variant.options], cwd=empty, env=env
            )
            try:
                started = _reach(client, stats_key, jobs // 10, worker)
                cpu_started, redis_cpu_started = cpu_seconds(worker.pid), _redis_cpu(client)
                ended = _reach(client, stats_key, jobs, worker)
                cpu_used = cpu_seconds(worker.pid) - cpu_started
                redis_cpu_used = _redis_cpu(client) - redis_cpu_started
            finally:
                worker.send_signal(signal.SIGTERM)
                worker.wait(60)
    finally:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        if keys:
            client.delete(*keys)
    counted = jobs - jobs // 10
    return Measured(counted / (ended - started), cpu_used / counted * 1e6, redis_cpu_used / counted * 1e6)


def _redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def chosen(variants: list[Variant], labels: str | None) -> list[Variant]:
    """The variants named in `labels` (comma-separated; None: all)."""
    if not labels:
        return variants
    wanted = set(labels.split(","))
    return [variant for variant in variants if variant.label in wanted]


def interleaved(
    variants: list[Variant], jobs: int, rounds: int, redis_url: str = REDIS_URL
) -> dict[str, list[Measured]]:
    """Measure each variant once per round, each round in a rotated order (a drift of the shared machine's load
    spreads over all of them); prints each measurement as it is made."""
    measured: dict[str, list[Measured]] = {variant.label: [] for variant in variants}
    for round_number in range(rounds):
        shift = round_number % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            result = measure(variant, jobs, redis_url)
            measured[variant.label].append(result)
            print(
                f"round {round_number + 1}: {variant.label}: {result.rate:,.0f} jobs/s, "
                f"{result.cpu_per_job:,.0f} µs worker CPU/job, {result.redis_cpu_per_job:,.0f} µs Redis CPU/job",
                flush=True,
            )
    return measured


def _reach(client: redis.Redis, stats_key: str, count: int, worker: subprocess.Popen[bytes]) -> float:
    deadline = time.monotonic() + 300
    while int(client.hget(stats_key, "processed") or 0) < count:
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker stopped or stalled before {count} jobs (exit {worker.returncode})")
        time.sleep(POLL)
    return time.perf_counter()


def chain_costs() -> dict[str, float]:
    """µs per run of a no-op job's middleware chain as pools build it, timed in this process (min of 5 repeats):
    a figure the shared machine's load barely moves, to set beside the worker's CPU per job."""
    tally = RunTally(redis.Redis.from_url(REDIS_URL), Keys("unused"), ["noop"], time.time)  # never flushed
    metrics = JobMetrics()
    built_ins: list[Middleware] = [Around(tally.counting), Around(job_context), Around(instrumentation.running)]
    chains = {
        "no middleware": build_chain([], _noop),
        "built-ins (metrics off)": build_chain(built_ins, _noop),
        "built-ins + metrics (metrics on)": build_chain([*built_ins, metrics.middleware], _noop),
    }
    return {label: _micros_per_run(cast(JobChain, chain)) for label, chain in chains.items()}  # _noop is sync


def _micros_per_run(chain: JobChain, runs: int = 100_000) -> float:
    job = Job("noop")
    return min(timeit.repeat(lambda: chain(job), number=runs, repeat=5)) / runs * 1e6


def _noop(job: Job) -> None:
    """The handler."""


@contextmanager
def worktree(commit: str, patch_built_ins: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="workq-bench-tree-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit], check=True)
    try:
        if patch_built_ins:
            source = path / "workq" / "worker_pool.py"
            text = source.read_text()
            if BUILT_INS not in text:
                raise RuntimeError(f"cannot find the built-in middlewares in {source}")
            source.write_text(text.replace(BUILT_INS, ""))
        yield path
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--variants", help="labels to run, comma-separated (default: all): 'metrics off,metrics on'")
    parser.add_argument("--write", type=Path, help="replace the section of this file (docs/benchmarks.md)")
    options = parser.parse_args()
    load_before = os.getloadavg()
    with worktree("HEAD", patch_built_ins=True) as bare, worktree(BEFORE_OBSERVABILITY) as before:
        variants = [
            Variant("metrics off", ROOT),
            Variant("metrics on", ROOT, ("--metrics-port", str(free_port()))),
            Variant("no built-ins", bare),
            Variant(f"before {BEFORE_OBSERVABILITY[:-2]}", before),
        ]
        measured = interleaved(chosen(variants, options.variants), options.jobs, options.rounds)
    text = section(
        measured,
        chain_costs(),
        jobs=options.jobs,
        rounds=options.rounds,
        load_before=load_before,
        load_after=os.getloadavg(),
    )
    print(f"\n{text}")
    if options.write is not None:
        replace_section(options.write, text)
        print(f"wrote the section into {options.write}")


FIELDS = ("rate", "cpu_per_job")
HEADING = "## Observability cost"


def section(
    measured: dict[str, list[Measured]],
    chains: dict[str, float],
    *,
    jobs: int,
    rounds: int,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> str:
    """The markdown section of docs/benchmarks.md: one row per variant, costs against `metrics off`."""
    base_rate, base_cpu = (statistics.median(getattr(m, field) for m in measured["metrics off"]) for field in FIELDS)
    lines = [
        HEADING,
        "",
        f"Written by `python -m benchmarks.observability_cost --jobs {jobs} --rounds {rounds} --write "
        f"docs/benchmarks.md` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} (not by `benchmarks.run`: "
        "re-run it after that). One `workq worker` process, 10 threads, draining no-op jobs, timed from the 10% to "
        "the 100% mark; the variants alternate, in a rotated order each round. Medians, min–max in brackets. The "
        "machine (2 cores) was shared with other work: load average "
        f"{' / '.join(f'{value:.2f}' for value in load_before)} at start, "
        f"{' / '.join(f'{value:.2f}' for value in load_after)} at the end, so the worker CPU per job is the steadier "
        "figure.",
        "",
        "| variant | jobs/s ↑ | vs metrics off | worker CPU per job (µs) ↓ | vs metrics off |",
        "|---|---|---|---|---|",
    ]
    for label, results in measured.items():
        rates, cpus = ([getattr(m, field) for m in results] for field in FIELDS)
        rate, cpu = statistics.median(rates), statistics.median(cpus)
        lines.append(
            f"| {label} | {rate:,.0f} ({min(rates):,.0f}–{max(rates):,.0f}) | {rate / base_rate - 1:+.1%} "
            f"| {cpu:,.0f} ({min(cpus):,.0f}–{max(cpus):,.0f}) | {cpu / base_cpu - 1:+.1%} |"
        )
    lines += ["", "| middleware chain of a no-op job, in process | µs per run | share of `metrics off`'s CPU per job |"]
    lines.append("|---|---|---|")
    bare = chains["no middleware"]
    for label, micros in chains.items():
        extra = "" if micros == bare else f" (+{micros - bare:.1f})"
        lines.append(f"| {label} | {micros:.1f}{extra} | {(micros - bare) / base_cpu:.1%} |")
    lines += [
        "",
        "`metrics off` is workq as shipped: the run tally of the charts, the log context and the (empty) "
        "instrumentation hook are middlewares of every chain. `metrics on` adds `--metrics-port`. `no built-ins` is "
        "the same commit with those three middlewares taken out of the chain, `before f588875` the commit before "
        "any of this landed.",
    ]
    return "\n".join(lines) + "\n"


def replace_section(path: Path, text: str, heading: str = HEADING) -> None:
    """Put `text` in place of the file's section under `heading` (up to the next `## `), or at its end."""
    document = path.read_text()
    start = document.find(f"\n{heading}\n")
    if start == -1:
        path.write_text(document.rstrip("\n") + "\n\n" + text)
        return
    following = document.find("\n## ", start + 1)
    rest = "" if following == -1 else document[following:]
    path.write_text(document[: start + 1] + text + rest)


if __name__ == "__main__":
    main()
