"""`workq worker MODULE:ATTR`: run a WorkerPool until SIGINT/SIGTERM, then stop it gracefully."""

from __future__ import annotations

import argparse
import gc
import importlib
import inspect
import logging
import math
import os
import signal
import sys
import tempfile
from types import FrameType
from typing import Any

from workq.cli.child_health import REPORT_FD_OPTION, report_health
from workq.cli.common import EXIT_FAILURE, EXIT_OK, UsageError
from workq.cli.supervisor import SUPERVISOR_FD_OPTION, Supervisor, child_argv, follow_supervisor
from workq.client import Client
from workq.connection import translated_faults
from workq.errors import WorkqError
from workq.log_format import CHILD_INDEX_ENV, configure_logging
from workq.metrics import (
    MULTIPROCESS_DIR_ENV,
    JobMetrics,
    children_registry,
    pool_registry,
    require_prometheus,
    serve,
)
from workq.worker_pool import WorkerPool

logger = logging.getLogger("workq")

DEFAULT_GRACE = 30.0
METRICS_DIR_OPTION = "--metrics-dir"
"""How a child of `--processes` learns where to write its metric samples (a hidden option)."""


def add_commands(commands: Any, connection: argparse.ArgumentParser) -> None:
    worker = commands.add_parser("worker", parents=[connection], help="run the WorkerPool found at MODULE:ATTR")
    worker.add_argument("target", metavar="MODULE:ATTR", help="e.g. myapp.jobs:pool (a WorkerPool or a factory)")
    worker.add_argument("--concurrency", type=int, metavar="N", help="worker threads (default: the pool's own setting)")
    worker.add_argument(
        "--grace",
        type=float,
        default=DEFAULT_GRACE,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, how long running jobs may take before they go back on their queues (default 30)",
    )
    worker.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="worker processes under one supervisor, each with --concurrency threads (default 1: no supervisor)",
    )
    worker.add_argument(
        "--pin-cpus",
        action="store_true",
        help="with --processes N (Linux): run each worker process on one CPU of those this command may use, in "
        "turn (its threads then hand the GIL over on one core; see Scaling out in the README)",
    )
    worker.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (needs the metrics extra; summed over --processes)",
    )
    worker.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address the metrics server binds to (default 127.0.0.1; 0.0.0.0 for a remote Prometheus)",
    )
    worker.add_argument(SUPERVISOR_FD_OPTION, type=int, help=argparse.SUPPRESS)  # set by the supervisor
    worker.add_argument(REPORT_FD_OPTION, type=int, help=argparse.SUPPRESS)  # set by the supervisor
    worker.add_argument(METRICS_DIR_OPTION, help=argparse.SUPPRESS)  # set by the supervisor
    worker.set_defaults(command=run_worker)


def load_pool(target: str) -> WorkerPool:
    """Import `module:attr` (the current directory first on the path) and return the WorkerPool it names."""
    module_name, _, attr_path = target.partition(":")
    if not module_name or not attr_path:
        raise UsageError(f"expected MODULE:ATTR (e.g. myapp.jobs:pool), got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise WorkqError(f"importing {module_name!r} failed: {_described(exc)}") from exc  # one it imports
        raise UsageError(f"cannot import {module_name!r}: {exc}") from exc
    except Exception as exc:  # the module's own code: a syntax error, or raising at import
        raise WorkqError(f"importing {module_name!r} failed: {_described(exc)}") from exc
    for part in attr_path.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise UsageError(f"{module_name!r} has no attribute {attr_path!r}") from None
    if not isinstance(found, WorkerPool) and _is_factory(found):
        try:
            found = found()
        except Exception as exc:
            raise WorkqError(f"{target}() failed: {_described(exc)}") from exc
    if not isinstance(found, WorkerPool):
        raise UsageError(f"{target} is a {type(found).__name__}, not a workq.WorkerPool")
    return found


def _described(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc} (--log-level DEBUG shows the traceback)"


def _is_factory(candidate: object) -> bool:
    """A callable taking no arguments may build the pool (`myapp.jobs:make_pool`)."""
    if not callable(candidate):
        return False
    try:
        inspect.signature(candidate).bind()
    except (TypeError, ValueError):
        return False
    return True


def _check_options(args: argparse.Namespace) -> None:
    if args.processes < 1:
        raise UsageError(f"--processes must be >= 1, got {args.processes}")
    if args.pin_cpus and (args.processes < 2 or not hasattr(os, "sched_setaffinity")):
        raise UsageError("--pin-cpus needs --processes 2 or more, on Linux (for one process: taskset -c CPU workq ...)")
    if not 0 <= args.grace < math.inf:
        raise UsageError(f"--grace must be a number of seconds >= 0, got {args.grace}")
    if args.metrics_port is not None:
        if not 0 < args.metrics_port < 65536:
            raise UsageError(f"--metrics-port must be a TCP port (1-65535), got {args.metrics_port}")
        require_prometheus()


def run_worker(args: argparse.Namespace) -> int:
    _check_options(args)
    loaded: list[WorkerPool] = []
    if args.supervisor_report_fd is not None:  # from the start: importing the app may be slow, and silence fatal
        report_health(args.supervisor_report_fd, lambda: loaded[0].stuck_runs if loaded else 0)
    if args.metrics_dir:  # before the app's module is imported: prometheus_client reads it at its own import
        os.environ[MULTIPROCESS_DIR_ENV] = args.metrics_dir
    pool = load_pool(args.target)
    loaded.append(pool)
    try:
        pool.configure(namespace=args.namespace, redis=args.redis_url, concurrency=args.concurrency)
        connection = pool.redis  # a URL is parsed here
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    child = os.environ.get(CHILD_INDEX_ENV) if args.supervisor_fd is not None else None
    if args.log_format == "json" or child is not None:
        configure_logging(args.log_level, args.log_format, pool_id=pool.pool_id, child=child)
    with translated_faults(connection):
        connection.ping()
    if args.processes > 1:
        return _supervise(args, pool)
    if args.metrics_port is not None or args.metrics_dir:
        _count_runs(args, pool)
    signals_received = _stop_on_signals(pool)
    # What the process imported and built so far lives as long as it does: frozen, a full collection (every few
    # seconds at a few thousand jobs/s) no longer walks it. It took 60-90 ms with the GIL held, stalling every
    # thread and the event loop, in `workq worker` of the asyncio benchmark; 12-20 ms once frozen.
    gc.freeze()
    pool.start()
    if signals_received:  # while the pool was starting, which discards earlier stop requests
        pool.request_stop()
    if args.supervisor_fd is not None:
        follow_supervisor(args.supervisor_fd, pool.request_stop)
    while not pool.wait_for_stop_request(timeout=1.0):
        pass
    pool.stop(grace=args.grace)
    return EXIT_OK


def _count_runs(args: argparse.Namespace, pool: WorkerPool) -> None:
    """Run metrics of this process: served here (`--metrics-port`), or summed by the supervisor (a child)."""
    job_metrics = JobMetrics()
    pool.middleware(job_metrics.middleware)
    if args.metrics_port is not None:
        registry = pool_registry(Client(pool.namespace, pool.redis), pool.job_names, job_metrics)
        serve(registry, args.metrics_port, args.metrics_host)


def _supervise(args: argparse.Namespace, pool: WorkerPool) -> int:
    """`--processes N`: the children's metrics are summed from files in a directory that lives as long as this."""
    if args.metrics_port is None:
        return Supervisor(child_argv(args), args.processes, grace=args.grace, pin_cpus=args.pin_cpus).run()
    with tempfile.TemporaryDirectory(prefix="workq-metrics-") as directory:
        registry = children_registry(Client(pool.namespace, pool.redis), pool.job_names, directory)
        serve(registry, args.metrics_port, args.metrics_host)
        argv = [*child_argv(args), METRICS_DIR_OPTION, directory]
        return Supervisor(argv, args.processes, grace=args.grace, pin_cpus=args.pin_cpus).run()


def _stop_on_signals(pool: WorkerPool) -> list[int]:
    """First SIGINT/SIGTERM: stop fetching and let in-flight jobs finish. Second: exit at once. (A stop begun for
    another reason — the supervisor gone, a handler raising SystemExit — is not a first signal.) Returns the list
    the handler appends the signals it receives to."""
    received: list[int] = []

    def handle(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        received.append(signum)
        if len(received) > 1:
            logger.warning("received %s again: exiting now; unfinished jobs stay in progress for recovery", name)
            os._exit(EXIT_FAILURE)
        logger.info("received %s: finishing in-flight jobs (send again to exit at once)", name)
        pool.request_stop()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return received
