"""`--profile`: the workq processing benchmark with py-spy sampling the worker process, summarised as tables.

py-spy (from .bench-venv) attaches to a warmed-up `workq worker` (never pausing it: `--nonblocking`) while a queue
of jobs is worked off, twice: once sampling only the thread that holds the GIL (where the Python CPU goes: one
core at most, whatever the thread count), once sampling every worker thread, idle or not (where each thread's wall
time goes: round trips, waiting for the GIL, waiting for work). The collapsed stacks are kept for flame graphs.
pyinstrument is not used: it samples only the thread that starts it, and workq's work happens in worker threads.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.measure import Bench, MeasurementFailed
from benchmarks.systems import System

SAMPLE_RATE = 250
FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^():]*)(?::\d+)?\)$")
LAYERS = [
    ("benchmark job (record_run)", "benchmarks/"),
    ("workq", "workq/"),
    ("redis-py", "redis/"),
    ("socket I/O", "socket.py"),
    ("json", "json/"),
    ("threading / locks", "threading.py"),
]


VIEWS = {
    "gil": (["--gil"], "the thread holding the GIL (Python CPU)"),
    "wall": (["--idle"], "every worker thread, running or waiting (wall time)"),
}
WORKER_LOOPS = ("Worker.run", "DispatchLoop._dispatch", "EventLoopThread._run")
"""Frames of the threads that run jobs: thread workers, the dispatch threads (fetch and ack) and the event loop."""


@dataclass(frozen=True)
class Profile:
    view: str
    samples: int
    seconds: float
    jobs: int
    worker_cpu_percent: float
    raw_path: Path
    stacks: Counter[tuple[str, ...]]


def parse_collapsed(text: str) -> Counter[tuple[str, ...]]:
    """py-spy's raw format: `frame;frame;... count`, outermost frame first."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def _split(frame: str) -> tuple[str, str]:
    match = FRAME.match(frame)
    return (match["function"], match["file"]) if match else (frame, "")


def _runs_jobs(frame: str) -> bool:
    return any(loop in frame for loop in WORKER_LOOPS)


def _layer(file: str) -> str:
    for name, marker in LAYERS:
        if marker in file:
            return name
    return "other (stdlib, interpreter)"


def _workq_function(frame: str) -> str | None:
    function, file = _split(frame)
    if "workq/" not in file:
        return None
    return f"{file.rsplit('workq/', 1)[1]}:{function}"


def summarise(profile: Profile, top: int = 12) -> str:
    stacks = profile.stacks
    if profile.view == "wall":  # only the threads that run jobs: the background loops idle by design
        stacks = Counter({stack: n for stack, n in stacks.items() if any(map(_runs_jobs, stack))})
    total = sum(stacks.values()) or 1
    by_layer: Counter[str] = Counter()
    by_workq: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for stack, count in stacks.items():
        function, file = _split(stack[-1])
        by_layer[_layer(file)] += count
        by_leaf[f"{function} ({file})"] += count
        owners = [name for name in map(_workq_function, stack) if name is not None]
        by_workq[owners[-1] if owners else "(no workq frame)"] += count
        for name in set(owners):
            inclusive[name] += count

    def percent_rows(counter: Counter[str]) -> list[str]:
        return [f"| {name} | {100 * count / total:.1f}% |" for name, count in counter.most_common(top)]

    rate = profile.jobs / profile.seconds if profile.seconds else 0.0
    return "\n".join(
        [
            f"**Sampling {VIEWS[profile.view][1]}** over {profile.jobs:,} jobs in {profile.seconds:.2f} s, from 10% "
            f"to 90% of a full queue worked off ({rate:,.0f} jobs/s under py-spy), worker process at "
            f"{profile.worker_cpu_percent:.0f}% of a core; "
            f"{total:,} samples at {SAMPLE_RATE} Hz (collapsed stacks: `{profile.raw_path}`).",
            "",
            "| by layer of the innermost frame | share |",
            "|---|---|",
            *percent_rows(by_layer),
            "",
            "| by innermost workq function on the stack | share |",
            "|---|---|",
            *percent_rows(by_workq),
            "",
            "| workq function, inclusive | share |",
            "|---|---|",
            *percent_rows(inclusive),
            "",
            "| hottest functions (self) | share |",
            "|---|---|",
            *percent_rows(by_leaf),
            "",
        ]
    )


def profile_processing(bench: Bench, system: System, jobs: int, py_spy: Path, view: str) -> Profile:
    """Work off `jobs` queued jobs; py-spy samples the steady state only, from 10% to 90% of them done."""
    raw_path = bench.workdir / f"workq-worker.{view}.pyspy.txt"
    with bench.space(f"{system.key}-profile-{view}") as space:
        bench.produce(system, space, "fill", jobs)
        worker = bench.start_worker(system, space)
        try:
            _wait_for(bench, space.results.done, jobs // 10, worker.running)
            spy = subprocess.Popen(
                [
                    str(py_spy),
                    "record",
                    "--pid",
                    str(worker.pid),
                    "--rate",
                    str(SAMPLE_RATE),
                    "--nonblocking",
                    *VIEWS[view][0],
                    "--format",
                    "raw",
                    "--output",
                    str(raw_path),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            started, done_before, cpu_before = (
                time.monotonic(),
                bench.client.scard(space.results.done),
                worker.cpu_seconds(),
            )
            _wait_for(bench, space.results.done, jobs * 9 // 10, worker.running)
            elapsed = time.monotonic() - started
            done = int(bench.client.scard(space.results.done)) - done_before
            cpu_used = worker.cpu_seconds() - cpu_before
            spy.send_signal(signal.SIGINT)
            _, spy_errors = spy.communicate(timeout=60)
            bench.wait_done(space, jobs, worker)
        finally:
            worker.stop()
    if not raw_path.exists():
        raise MeasurementFailed(f"py-spy wrote no profile ({spy_errors.strip()[-500:]})")
    stacks = parse_collapsed(raw_path.read_text())
    return Profile(
        view=view,
        samples=sum(stacks.values()),
        seconds=elapsed,
        jobs=done,
        worker_cpu_percent=100 * cpu_used / elapsed,
        raw_path=raw_path,
        stacks=stacks,
    )


def _wait_for(bench: Bench, done_key: str, count: int, running: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while int(bench.client.scard(done_key)) < count:
        if time.monotonic() > deadline or not running():
            raise MeasurementFailed(f"the worker did not reach {count} jobs done")
        time.sleep(0.01)
