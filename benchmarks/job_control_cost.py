"""What time limits, cancels and kept results cost the hot path: `python -m benchmarks.job_control_cost
[--jobs 20000] [--rounds 6]`.

The claim it tests: a job without `keep_result` or `timeout` costs nothing extra against the commit before time
limits and job control landed (issue 13, `a946619`). One `workq worker` process (10 threads) drains `--jobs` no-op
jobs enqueued beforehand, timed from the 10% to the 100% mark (see `benchmarks.observability_cost.measure`).
Variants, each round in a rotated order so that a drift of the shared machine's load spreads over all of them:

- `before a946619` and `before a946619 (A/A)`: that commit (a temporary worktree), the job without options, twice:
  how far two identical variants land apart is the noise floor of the run;
- `watchdog a7da463`: main before this branch's first merge (issue 13's first watchdog: a lock, an interrupter
  and two lambdas per run), for reference;
- `no options`, `keep_result=60`, `timeout=30`: this checkout's HEAD (a worktree too: edits made while it runs
  change nothing), the job without options and with each option.

By default the worker talks to a redis-server of the benchmark's own (on a free port, no persistence), so Redis's
CPU per job is the variants' alone; `--redis-url` uses another. Prints a markdown section: medians, and the median of
each round's ratio to `before a946619` (rounds pair up runs made a minute apart at most), and the in-process cost
of the code around a run, which the machine's load barely moves.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import threading
import time
import timeit
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.observability_cost import Measured, Variant, chosen, interleaved, replace_section, worktree
from benchmarks.redis_server import private_redis
from workq import Job, time_limits

BEFORE_ISSUE_13 = "a946619"
OLD_WATCHDOG = "a7da463"
BASE = f"before {BEFORE_ISSUE_13}"
OPTIONS_ENV = "WORKQ_BENCH_NOOP_OPTIONS"
HEADING = "## Job control cost"


def variants(trees: dict[str, Path]) -> list[Variant]:
    return [
        Variant(BASE, trees[BEFORE_ISSUE_13]),
        Variant(f"{BASE} (A/A)", trees[BEFORE_ISSUE_13]),
        Variant(f"watchdog {OLD_WATCHDOG}", trees[OLD_WATCHDOG]),
        Variant("no options", trees["HEAD"]),
        Variant("keep_result=60", trees["HEAD"], environment=((OPTIONS_ENV, '{"keep_result": 60}'),)),
        Variant("timeout=30", trees["HEAD"], environment=((OPTIONS_ENV, '{"timeout": 30}'),)),
    ]


def wrapper_costs(old_tree: Path) -> dict[str, float]:
    """µs per run of the code around a no-op chain in this process (min of 5 × 100,000 runs): a946619's (a
    try/except and a checkin lambda), issue 13's first watchdog (its time_limits.py loaded from `old_tree`) and this
    tree's, without and with a time limit."""
    spec = importlib.util.spec_from_file_location("old_time_limits", old_tree / "workq" / "time_limits.py")
    assert spec is not None and spec.loader is not None
    old: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    old_watchdog, watchdog = old.Watchdog(), time_limits.Watchdog()
    old_watchdog.start()
    watchdog.start()
    job, owner = Job("noop"), _Owner()

    def before(limit: float) -> object:
        job._checkin_hook = lambda message: None
        try:
            _noop(job)
        except BaseException as exc:
            return exc
        return None

    def first_watchdog(limit: float) -> object:
        control = old_watchdog.watch(job, limit, old.ThreadInterrupter(threading.get_ident()), lambda c: None)
        job._checkin_hook = lambda message: None
        return control.outcome(old_watchdog.run(control, lambda: _noop(job)))

    def this_tree(limit: float) -> object:
        control = watchdog.watch(job, limit, owner)
        job._checkin_hook = control
        return control.outcome(watchdog.run(control, _noop))

    costs = {}
    try:
        for label, wrapper in ((BASE, before), (f"watchdog {OLD_WATCHDOG}", first_watchdog), ("this tree", this_tree)):
            for limit in (0, 30) if wrapper is not before else (0,):
                runs = 100_000
                best = min(timeit.repeat(lambda: wrapper(limit), number=runs, repeat=5))  # noqa: B023
                costs[f"{label}{', timeout=30' if limit else ''}"] = best / runs * 1e6
    finally:
        old_watchdog.stop()
        watchdog.stop()
    return costs


class _Owner:
    def on_checkin(self, control: time_limits.RunControl, message: str) -> None:
        """Not called."""

    def on_abandoned(self, control: time_limits.RunControl) -> None:
        """Not called."""


def _noop(job: Job) -> None:
    """The chain."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--redis-url", help="use this Redis instead of a server of the benchmark's own")
    parser.add_argument("--variants", help="labels to run, comma-separated (default: all)")
    parser.add_argument("--write", type=Path, help="replace the section of this file (docs/benchmarks.md)")
    options = parser.parse_args()
    load_before = os.getloadavg()
    with ExitStack() as stack:
        trees = {commit: stack.enter_context(worktree(commit)) for commit in (BEFORE_ISSUE_13, OLD_WATCHDOG, "HEAD")}
        url = options.redis_url or stack.enter_context(private_redis())
        measured = interleaved(chosen(variants(trees), options.variants), options.jobs, options.rounds, url)
        wrappers = wrapper_costs(trees[OLD_WATCHDOG])
    text = section(
        measured,
        wrappers,
        jobs=options.jobs,
        rounds=options.rounds,
        private=options.redis_url is None,
        load=(load_before, os.getloadavg()),
    )
    print(f"\n{text}")
    if options.write is not None:
        replace_section(options.write, text, HEADING)
        print(f"wrote the section into {options.write}")


FIELDS = ("rate", "cpu_per_job", "redis_cpu_per_job")


def section(
    measured: dict[str, list[Measured]],
    wrappers: dict[str, float],
    *,
    jobs: int,
    rounds: int,
    private: bool,
    load: tuple[tuple[float, float, float], tuple[float, float, float]],
) -> str:
    """The markdown table: per variant, medians (min–max) and the median (min–max) of its per-round ratio to BASE."""
    where = "a server of the benchmark's own" if private else "shared"
    start, end = (" / ".join(f"{value:.2f}" for value in averages) for averages in load)
    lines = [
        HEADING,
        "",
        f"`python -m benchmarks.job_control_cost --jobs {jobs} --rounds {rounds}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: one `workq worker` process, 10 threads, draining "
        f"no-op jobs, timed from the 10% to the 100% mark; variants interleaved, rotated each round; Redis "
        f"{where}. Load average {start} at start, {end} at the "
        "end (2 cores). Medians (min–max); 'vs before' is the median (min–max) over rounds of the round's ratio.",
        "",
        "| variant | jobs/s ↑ | vs before | worker CPU µs/job ↓ | vs before | Redis CPU µs/job ↓ | vs before |",
        "|---|---|---|---|---|---|---|",
    ]
    base = measured.get(BASE)
    for label, results in measured.items():
        cells = [label]
        for field in FIELDS:
            values = [getattr(result, field) for result in results]
            cells.append(f"{statistics.median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})")
            if base is None:
                cells.append("")
                continue
            ratios = [
                getattr(mine, field) / getattr(theirs, field) - 1
                for mine, theirs in zip(results, base, strict=False)
                if getattr(theirs, field)
            ]
            cells.append(f"{statistics.median(ratios):+.1%} ({min(ratios):+.1%}…{max(ratios):+.1%})" if ratios else "")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| code around a no-op run, in process | µs per run |", "|---|---|"]
    lines += [f"| {label} | {micros:.2f} |" for label, micros in wrappers.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
