"""Job control commands: `workq cancel JOB_ID`, `workq purge NAME --yes`, `workq status JOB_ID [--json]`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from workq.cli.common import EXIT_FAILURE, EXIT_OK, UsageError, checked_name, client_for

OUTCOMES = {
    "queued": "removed from its queue; it will not run",
    "scheduled": "removed from the scheduled jobs; it will not run",
    "retry": "removed from the jobs waiting to retry; it will not run again",
    "dead": "removed from the dead jobs",
    "running": "its pool was asked to interrupt it; it will be filed dead, 'cancelled' (see `workq status`)",
}


def add_commands(commands: Any, connection: argparse.ArgumentParser) -> None:
    cancel = commands.add_parser("cancel", parents=[connection], help="cancel one job by id, wherever it is")
    cancel.add_argument("job_id", help="the job's id")
    cancel.set_defaults(command=run_cancel)

    purge = commands.add_parser("purge", parents=[connection], help="delete every queued job of NAME")
    purge.add_argument("name", help="job name")
    purge.add_argument("--yes", action="store_true", help="confirm: the jobs are deleted for good")
    purge.set_defaults(command=run_purge)

    status = commands.add_parser("status", parents=[connection], help="where one job is, by id, and its result")
    status.add_argument("job_id", help="the job's id")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(command=run_status)


def run_cancel(args: argparse.Namespace) -> int:
    was = client_for(args).cancel(args.job_id)
    print(f"cancelled job {args.job_id} ({was}): {OUTCOMES[was]}")
    return EXIT_OK


def run_purge(args: argparse.Namespace) -> int:
    name = checked_name(args.name)
    if not args.yes:
        raise UsageError(f"purge deletes every queued {name} job for good; add --yes to confirm")
    print(f"purged {client_for(args).purge(name)} queued {name} job(s)")
    return EXIT_OK


def run_status(args: argparse.Namespace) -> int:
    status = client_for(args).job_status(args.job_id)
    if status is None:
        print(f"workq: no job {args.job_id}: never enqueued, deleted, or finished without keep_result", file=sys.stderr)
        return EXIT_FAILURE
    if args.json:
        print(json.dumps(dataclasses.asdict(status), ensure_ascii=False, indent=2))
        return EXIT_OK
    rows = [
        ("job_id", status.job_id),
        ("job_name", status.job_name),
        ("state", status.state),
        ("fails", status.fails),
        ("last_err", status.last_err or "-"),
        ("updated_at", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(status.updated_at))),
    ]
    if status.state == "done":
        rows.append(("result", json.dumps(status.result, ensure_ascii=False)))
    for label, value in rows:
        print(f"{label + ':':<12}{value}")
    return EXIT_OK
