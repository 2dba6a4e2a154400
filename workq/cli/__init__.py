"""The `workq` command. argparse, not click: the standard library covers these subcommands and keeps workq's
runtime dependencies to redis and croniter."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

import redis

from workq.cli import control, jobs, views, web, worker
from workq.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, connection_options
from workq.cli.worker import load_pool
from workq.distribution import installed_version
from workq.errors import WorkqError
from workq.log_format import configure_logging

logger = logging.getLogger("workq.cli")

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "UsageError", "load_pool", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Bad input, workq's errors and Redis's refusals are one line on stderr and exit 1 (2 for
    usage); with --log-level DEBUG their traceback follows. Anything else is a bug and keeps its traceback."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except UsageError as exc:
        return _refused(f"workq: {exc}", exc, EXIT_USAGE)
    except WorkqError as exc:
        return _refused(f"workq: {exc}", exc, EXIT_FAILURE)
    except redis.RedisError as exc:  # e.g. WRONGTYPE on a corrupted key, or an ACL refusal
        return _refused(f"workq: Redis refused: {exc}", exc, EXIT_FAILURE)


def _refused(line: str, exc: Exception, status: int) -> int:
    print(line, file=sys.stderr)
    logger.debug("traceback of the error above", exc_info=exc)
    return status


def _build_parser() -> argparse.ArgumentParser:
    connection = connection_options()
    parser = argparse.ArgumentParser(prog="workq", description="Redis-backed background jobs.")
    parser.add_argument("--version", action="version", version=f"workq {installed_version()}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    for module in (worker, jobs, control, views, web):
        module.add_commands(commands, connection)
    return parser
