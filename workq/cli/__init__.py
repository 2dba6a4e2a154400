"""The `workq` command. argparse, not click: the standard library covers these subcommands and keeps workq's
runtime dependencies to redis and croniter."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import redis

from workq.cli import jobs, views, web, worker
from workq.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, connection_options
from workq.cli.worker import load_pool
from workq.errors import WorkqError
from workq.log_format import configure_logging

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "UsageError", "load_pool", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except UsageError as exc:
        print(f"workq: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WorkqError as exc:
        print(f"workq: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except redis.RedisError as exc:  # e.g. WRONGTYPE on a corrupted key, or an ACL refusal
        print(f"workq: Redis refused: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _build_parser() -> argparse.ArgumentParser:
    connection = connection_options()
    parser = argparse.ArgumentParser(prog="workq", description="Redis-backed background jobs.")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    for module in (worker, jobs, views, web):
        module.add_commands(commands, connection)
    return parser
