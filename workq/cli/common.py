"""What every `workq` command shares: exit statuses, usage errors and the connection options."""

from __future__ import annotations

import argparse

from workq.client import Client
from workq.job import check_job_name
from workq.log_format import FORMATS

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line input: reported in one line with exit status 2."""


def connection_options() -> argparse.ArgumentParser:
    """A parent parser with --redis-url, --namespace and --log-level, shared by every command."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--redis-url", help="Redis URL (default: $WORKQ_REDIS_URL or redis://localhost:6379/0)")
    options.add_argument("--namespace", help="key namespace (default: $WORKQ_NAMESPACE or workq)")
    options.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="(default INFO)"
    )
    options.add_argument(
        "--log-format",
        default="text",
        choices=FORMATS,
        help="text (default) or json: one JSON object per line (time, level, logger, message, job and pool fields)",
    )
    return options


def client_for(args: argparse.Namespace) -> Client:
    """The Client of --redis-url / --namespace; a URL Redis cannot use is a usage error, said in one line."""
    try:
        return Client(args.namespace, args.redis_url)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc


def checked_name(name: str) -> str:
    try:
        return check_job_name(name)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
