"""The `workq` command. argparse, not click: the standard library covers a handful of subcommands and keeps
workq's runtime dependencies to redis and croniter."""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from workq.client import Client
from workq.connection import translated_faults
from workq.enqueuer import Enqueuer
from workq.errors import WorkqError
from workq.job import Job, check_job_name
from workq.worker_pool import WorkerPool

logger = logging.getLogger("workq")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
DEFAULT_GRACE = 30.0


class UsageError(Exception):
    """Bad command-line input: reported in one line with exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.log_level)
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except UsageError as exc:
        print(f"workq: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WorkqError as exc:
        print(f"workq: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _build_parser() -> argparse.ArgumentParser:
    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument("--redis-url", help="Redis URL (default: $WORKQ_REDIS_URL or redis://localhost:6379/0)")
    connection.add_argument("--namespace", help="key namespace (default: $WORKQ_NAMESPACE or workq)")
    connection.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    parser = argparse.ArgumentParser(prog="workq", description="Redis-backed background jobs.")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

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
    worker.set_defaults(command=run_worker)

    enqueue = commands.add_parser("enqueue", parents=[connection], help="enqueue one job")
    enqueue.add_argument("name", help="job name")
    enqueue.add_argument("--args", default=None, help="job arguments as a JSON object, e.g. '{\"id\": 7}'")
    enqueue.add_argument("--in", dest="delay", type=float, metavar="SECONDS", help="run no earlier than this")
    enqueue.add_argument("--unique", action="store_true", help="skip if the same job is already queued/scheduled")
    enqueue.set_defaults(command=run_enqueue)

    for name, verb in (("pause", "stop fetching"), ("unpause", "resume fetching")):
        toggle = commands.add_parser(name, parents=[connection], help=f"every pool will {verb} jobs of NAME")
        toggle.add_argument("name", help="job name")
        toggle.set_defaults(command=run_pause if name == "pause" else run_unpause)
    return parser


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def load_pool(target: str) -> WorkerPool:
    """Import `module:attr` (the current directory first on the path) and return the WorkerPool it names."""
    module_name, _, attr_path = target.partition(":")
    if not module_name or not attr_path:
        raise UsageError(f"expected MODULE:ATTR (e.g. myapp.jobs:pool), got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r}: {exc}") from None
    for part in attr_path.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise UsageError(f"{module_name!r} has no attribute {attr_path!r}") from None
    if not isinstance(found, WorkerPool) and _is_factory(found):
        found = found()
    if not isinstance(found, WorkerPool):
        raise UsageError(f"{target} is a {type(found).__name__}, not a workq.WorkerPool")
    return found


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
    pool = load_pool(args.target)
    try:
        pool.configure(namespace=args.namespace, redis=args.redis_url, concurrency=args.concurrency)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    with translated_faults(pool.redis):
        pool.redis.ping()
    _stop_on_signals(pool)
    pool.start()
    while not pool.wait_for_stop_request(timeout=1.0):
        pass
    pool.stop(grace=args.grace)
    return EXIT_OK


def _stop_on_signals(pool: WorkerPool) -> None:
    """First SIGINT/SIGTERM: stop fetching and let in-flight jobs finish. Second: exit at once."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if pool.stopping:
            logger.warning("received %s again: exiting now; unfinished jobs stay in progress for recovery", name)
            os._exit(EXIT_FAILURE)
        logger.info("received %s: finishing in-flight jobs (send again to exit at once)", name)
        pool.request_stop()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def run_pause(args: argparse.Namespace) -> int:
    _client(args).pause(args.name)
    print(f"paused {args.name}: no pool fetches it until `workq unpause {args.name}`")
    return EXIT_OK


def run_unpause(args: argparse.Namespace) -> int:
    _client(args).unpause(args.name)
    print(f"unpaused {args.name}")
    return EXIT_OK


def _client(args: argparse.Namespace) -> Client:
    try:
        check_job_name(args.name)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    return Client(args.namespace, args.redis_url)


def run_enqueue(args: argparse.Namespace) -> int:
    job_args = _parse_job_args(args.args)
    enqueuer = Enqueuer(args.namespace, args.redis_url)
    job: Job | None
    try:
        if args.unique and args.delay is not None:
            job = enqueuer.enqueue_unique_in(args.name, args.delay, job_args)
        elif args.unique:
            job = enqueuer.enqueue_unique(args.name, job_args)
        elif args.delay is not None:
            job = enqueuer.enqueue_in(args.name, args.delay, job_args)
        else:
            job = enqueuer.enqueue(args.name, job_args)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if job is None:
        print(f"workq: an identical {args.name} job is already queued or scheduled; nothing enqueued", file=sys.stderr)
        return EXIT_OK
    print(job.to_json())
    return EXIT_OK


def _parse_job_args(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--args is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise UsageError(f"--args must be a JSON object, got {type(parsed).__name__}")
    return parsed
