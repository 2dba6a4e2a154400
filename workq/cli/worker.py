"""`workq worker MODULE:ATTR`: run a WorkerPool until SIGINT/SIGTERM, then stop it gracefully."""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import math
import os
import signal
import sys
from types import FrameType
from typing import Any

from workq.cli.common import EXIT_FAILURE, EXIT_OK, UsageError
from workq.cli.supervisor import SUPERVISOR_FD_OPTION, Supervisor, child_argv, follow_supervisor
from workq.connection import translated_faults
from workq.errors import WorkqError
from workq.worker_pool import WorkerPool

logger = logging.getLogger("workq")

DEFAULT_GRACE = 30.0


def add_commands(commands: Any, connection: argparse.ArgumentParser) -> None:
    worker = commands.add_parser("worker", parents=[connection], help="run the WorkerPool found at MODULE:ATTR")
    worker.add_argument("target", metavar="MODULE:ATTR", help="e.g. myapp.jobs:pool (a WorkerPool or a factory)")
    worker.add_argument("--concurrency", type=int, help="worker threads (default: the pool's own setting)")
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
        help="worker processes under one supervisor, each with --concurrency threads",
    )
    worker.add_argument(SUPERVISOR_FD_OPTION, type=int, help=argparse.SUPPRESS)  # set by the supervisor
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


def run_worker(args: argparse.Namespace) -> int:
    if args.processes < 1:
        raise UsageError(f"--processes must be >= 1, got {args.processes}")
    if not 0 <= args.grace < math.inf:
        raise UsageError(f"--grace must be a number of seconds >= 0, got {args.grace}")
    pool = load_pool(args.target)
    try:
        pool.configure(namespace=args.namespace, redis=args.redis_url, concurrency=args.concurrency)
        connection = pool.redis  # a URL is parsed here
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    with translated_faults(connection):
        connection.ping()
    if args.processes > 1:
        return Supervisor(child_argv(args), args.processes).run()
    signals_received = _stop_on_signals(pool)
    pool.start()
    if signals_received:  # while the pool was starting, which discards earlier stop requests
        pool.request_stop()
    if args.supervisor_fd is not None:
        follow_supervisor(args.supervisor_fd, pool.request_stop)
    while not pool.wait_for_stop_request(timeout=1.0):
        pass
    pool.stop(grace=args.grace)
    return EXIT_OK


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
