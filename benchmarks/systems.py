"""The systems measured, side by side: how each one's worker is started and which producer feeds it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.apps.io_job import IN_FLIGHT
from benchmarks.peer_venv import ROOT, PeerVenv
from benchmarks.space import DRAMATIQ_QUEUE, RQ_QUEUE, Space

CONCURRENCY = 10
PARSER_VARIANT = "workq-parser"
"""Key of workq run with the other reply parser (hiredis or redis-py's own) than its environment has."""

WorkerCommand = Callable[["Interpreter", Space, str, int], list[str]]
"""(interpreter, space, redis URL, processes) -> argv of the worker process."""


@dataclass(frozen=True)
class Interpreter:
    """A Python to run producers and workers with, and what to add to their environment."""

    python: Path
    env: dict[str, str] = field(default_factory=dict)

    def script(self, name: str) -> str:
        return str(self.python.parent / name)


@dataclass(frozen=True)
class System:
    """`key` names the table column; `producer` names the `benchmarks.producers` system that feeds it."""

    key: str
    label: str
    producer: str
    interpreter: Interpreter
    worker: WorkerCommand
    exits_when_empty: bool = False


def workq_worker_of(pool: str, concurrency: int, pin_cpus: bool = False) -> WorkerCommand:
    """`workq worker POOL` (module:attribute) with `concurrency` threads (the pool sizes its own connection pool
    from its thread count when the URL sets no `max_connections`); `pin_cpus`: with `--processes N`, each child
    on a CPU of its own (`--pin-cpus`)."""

    def command(interpreter: Interpreter, space: Space, redis_url: str, processes: int) -> list[str]:
        argv = [
            str(interpreter.python),
            "-m",
            "workq",
            "worker",
            pool,
            "--redis-url",
            redis_url,
            "--namespace",
            space.workq_namespace,
            "--concurrency",
            str(concurrency),
            "--log-level",
            "WARNING",
        ]
        if processes == 1:
            return argv
        return [*argv, "--processes", str(processes), *(["--pin-cpus"] if pin_cpus else [])]

    return command


workq_worker = workq_worker_of("benchmarks.apps.workq_app:pool", CONCURRENCY)
workq_worker_pinned = workq_worker_of("benchmarks.apps.workq_app:pool", CONCURRENCY, pin_cpus=True)


def rq_worker(worker_class: str | None) -> WorkerCommand:
    def command(interpreter: Interpreter, space: Space, redis_url: str, processes: int) -> list[str]:
        chosen = ["--worker-class", worker_class] if worker_class else []
        return [
            interpreter.script("rq"),
            "worker",
            "--url",
            redis_url,
            *chosen,
            "--path",
            str(ROOT),
            "--logging_level",
            "WARNING",
            "--disable-job-desc-logging",
            RQ_QUEUE,
        ]

    return command


def dramatiq_worker(interpreter: Interpreter, space: Space, redis_url: str, processes: int) -> list[str]:
    return [
        interpreter.script("dramatiq"),
        "benchmarks.apps.dramatiq_app",
        "--processes",
        str(processes),
        "--threads",
        str(CONCURRENCY),
        "--path",
        str(ROOT),
        "--queues",
        DRAMATIQ_QUEUE,
    ]


ARQ_TUNED_POLL_DELAY = 0.01


def arq_worker(**settings: float) -> WorkerCommand:
    """`benchmarks.apps.arq_app` with arq's defaults but `settings` (max_jobs, poll_delay)."""

    def command(interpreter: Interpreter, space: Space, redis_url: str, processes: int) -> list[str]:
        flags = [item for name, value in settings.items() for item in (f"--{name.replace('_', '-')}", str(value))]
        return [str(interpreter.python), "-m", "benchmarks.apps.arq_app", *flags]

    return command


def saq_worker(settings: str) -> WorkerCommand:
    """`saq` with `settings`, a settings dict of `benchmarks.apps.saq_app`."""

    def command(interpreter: Interpreter, space: Space, redis_url: str, processes: int) -> list[str]:
        return [interpreter.script("saq"), f"benchmarks.apps.saq_app.{settings}", "--quiet"]

    return command


def huey_worker(workers: int) -> WorkerCommand:
    """`huey_consumer` with `workers` threads (`-k thread`, Huey's default worker type; its default count is 1)."""

    def command(interpreter: Interpreter, space: Space, redis_url: str, processes: int) -> list[str]:
        return [interpreter.script("huey_consumer"), "benchmarks.apps.huey_app.huey", "-w", str(workers), "-q"]

    return command


def ceiling_loop(threads: int) -> WorkerCommand:
    def command(interpreter: Interpreter, space: Space, redis_url: str, processes: int) -> list[str]:
        return [
            str(interpreter.python),
            "-m",
            "benchmarks.ceiling",
            "--space",
            space.prefix,
            "--threads",
            str(threads),
            "--redis-url",
            redis_url,
        ]

    return command


def io_ceiling_loop(interpreter: Interpreter, space: Space, redis_url: str, processes: int) -> list[str]:
    return [str(interpreter.python), "-m", "benchmarks.io_ceiling", "--space", space.prefix, "--redis-url", redis_url]


def _pythonpath(site: Path) -> str:
    return os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")]))


def has_hiredis(interpreter: Interpreter) -> bool:
    """Whether redis-py uses hiredis in `interpreter` (with its environment)."""
    probe = "import redis.utils, sys; sys.exit(0 if redis.utils.HIREDIS_AVAILABLE else 1)"
    env = {**os.environ, **interpreter.env}
    return subprocess.run([str(interpreter.python), "-c", probe], env=env, check=False).returncode == 0


def workq_systems(python: Path | None = None, venv: PeerVenv | None = None) -> dict[str, System]:
    """workq (this checkout, in the interpreter running the harness), the raw-redis-py ceilings and, given the
    peers' venv, workq with the other reply parser (with hiredis if workq's environment lacks it, else without)."""
    plain = Interpreter(python or Path(sys.executable))
    systems = {
        "workq": System("workq", "workq", "workq", plain, workq_worker),
        "ceiling-1": System("ceiling-1", "ceiling, 1 thread", "raw", plain, ceiling_loop(1), exits_when_empty=True),
        "ceiling-10": System(
            "ceiling-10", "ceiling, 10 threads", "raw", plain, ceiling_loop(10), exits_when_empty=True
        ),
    }
    if venv is not None:
        with_hiredis = has_hiredis(plain)
        site = venv.no_hiredis_site if with_hiredis else venv.hiredis_site
        label = "workq without hiredis" if with_hiredis else "workq + hiredis"
        other = Interpreter(plain.python, {"PYTHONPATH": _pythonpath(site)})
        systems[PARSER_VARIANT] = System(PARSER_VARIANT, label, "workq", other, workq_worker)
    return systems


def peer_systems(venv: PeerVenv, hiredis: bool) -> dict[str, System]:
    """RQ, Dramatiq and Huey from the peers' venv, with hiredis exactly when workq has it: the same reply parser for
    all. Huey twice: with its defaults (one worker thread) and with the setting every deployment changes, its
    worker count, at workq's concurrency."""
    peers = Interpreter(venv.python, {"PYTHONPATH": _pythonpath(venv.hiredis_site)} if hiredis else {})
    return {
        "rq-simple": System("rq-simple", "RQ SimpleWorker", "rq", peers, rq_worker("rq.worker.SimpleWorker")),
        "rq-fork": System("rq-fork", "RQ Worker (fork per job)", "rq", peers, rq_worker(None)),
        "dramatiq": System("dramatiq", "Dramatiq (1 process × 10 threads)", "dramatiq", peers, dramatiq_worker),
        "huey": System("huey", "Huey (defaults: 1 thread)", "huey", peers, huey_worker(1)),
        "huey-tuned": System("huey-tuned", f"Huey (-w {CONCURRENCY} threads)", "huey", peers, huey_worker(CONCURRENCY)),
    }


def asyncio_peer_systems(venv: PeerVenv) -> dict[str, System]:
    """arq and saq from their venv (arq pins redis < 6), each with its defaults (10 jobs at once) and with the one
    setting a busy deployment changes: arq's `poll_delay` (0.5 s between reads of at most 100 jobs), saq's job `ttl`
    (every job's record kept 600 s after its run: 600,000 keys at 1,000 jobs/s)."""
    peers = Interpreter(venv.python)
    tuned_arq = f"arq (poll_delay={ARQ_TUNED_POLL_DELAY})"
    return {
        "arq": System("arq", "arq (defaults)", "arq", peers, arq_worker()),
        "arq-tuned": System("arq-tuned", tuned_arq, "arq", peers, arq_worker(poll_delay=ARQ_TUNED_POLL_DELAY)),
        "saq": System("saq", "saq (defaults)", "saq", peers, saq_worker("noop_settings")),
        "saq-tuned": System("saq-tuned", "saq (ttl=-1)", "saq-no-ttl", peers, saq_worker("noop_settings")),
    }


def asyncio_systems(venv: PeerVenv | None, python: Path | None = None) -> dict[str, System]:
    """Issue 14's I/O-bound job on workq (async def, and sync on as many threads), on a raw redis.asyncio loop (for
    context: what the machine leaves reachable), on arq and saq (from `venv`, when given), each IN_FLIGHT at once;
    and workq's no-op job as an async def handler."""
    plain = Interpreter(python or Path(sys.executable))
    app = "benchmarks.apps.workq_async_app"
    systems = {
        "io-workq": System("io-workq", "workq (async def)", "workq", plain, workq_worker_of(f"{app}:io_pool", 1)),
        "io-workq-threads": System(
            "io-workq-threads",
            f"workq, {IN_FLIGHT} threads (sync def)",
            "workq",
            plain,
            workq_worker_of(f"{app}:threads_io_pool", IN_FLIGHT),
        ),
        "io-ceiling": System(
            "io-ceiling", "raw redis.asyncio loop", "raw", plain, io_ceiling_loop, exits_when_empty=True
        ),
        "noop-workq-async": System(
            "noop-workq-async", "workq (async def)", "workq", plain, workq_worker_of(f"{app}:noop_pool", 1)
        ),
    }
    if venv is not None:
        peers = Interpreter(venv.python)
        io_arq = arq_worker(max_jobs=IN_FLIGHT)
        systems["io-arq"] = System("io-arq", f"arq (max_jobs={IN_FLIGHT})", "arq-io", peers, io_arq)
        systems["io-saq"] = System("io-saq", f"saq (concurrency={IN_FLIGHT})", "saq-io", peers, saq_worker("settings"))
    return systems


def workq_worker_has(option: str, python: Path | None = None) -> bool:
    """True once `workq worker` has `option` in this checkout (`--processes`, `--pin-cpus`)."""
    help_text = subprocess.run(
        [str(python or sys.executable), "-m", "workq", "worker", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout
    return option in help_text
