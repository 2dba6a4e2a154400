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
from workq.errors import WorkqError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "UsageError", "load_pool", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
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
    for module in (worker, jobs, control, views, web):
        module.add_commands(commands, connection)
    return parser
