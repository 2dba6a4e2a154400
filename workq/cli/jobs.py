"""Commands that change jobs: `workq enqueue`, `pause`/`unpause`, `retry-dead` (one, all, by reason), `delete-dead`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import redis

from workq import gojson
from workq.cli.common import EXIT_OK, UsageError, checked_name, client_for
from workq.enqueuer import Enqueuer
from workq.errors import WorkqError
from workq.job import Job


def add_commands(commands: Any, connection: argparse.ArgumentParser) -> None:
    enqueue = commands.add_parser("enqueue", parents=[connection], help="enqueue one job")
    enqueue.add_argument("name", help="job name")
    enqueue.add_argument(
        "--args", default=None, metavar="JSON", help="job arguments as a JSON object, e.g. '{\"id\": 7}'"
    )
    enqueue.add_argument("--in", dest="delay", type=float, metavar="SECONDS", help="run no earlier than this")
    enqueue.add_argument("--unique", action="store_true", help="skip if the same job is already queued/scheduled")
    enqueue.set_defaults(command=run_enqueue)

    for name, verb in (("pause", "stop fetching"), ("unpause", "resume fetching")):
        toggle = commands.add_parser(name, parents=[connection], help=f"every pool will {verb} jobs of NAME")
        toggle.add_argument("name", help="job name")
        toggle.set_defaults(command=run_pause if name == "pause" else run_unpause)

    for name, action in (("retry-dead", "requeue"), ("delete-dead", "delete")):
        repair = commands.add_parser(name, parents=[connection], help=f"{action} one dead job, or all with --all")
        repair.add_argument("died_at", nargs="?", type=int, help="the dead job's died_at (see `workq dead`)")
        repair.add_argument("job_id", nargs="?", help="the dead job's id")
        repair.add_argument("--all", action="store_true", help=f"{action} every dead job")
        repair.set_defaults(command=run_retry_dead if name == "retry-dead" else run_delete_dead, reason=None)
        if name == "retry-dead":
            repair.add_argument(
                "--reason",
                metavar="TEXT",
                help="requeue every dead job whose error contains TEXT, e.g. 'unknown job' for the jobs a "
                "gocraft/work pool's requeuer dead-letters",
            )


def _one_or_all(args: argparse.Namespace) -> bool:
    """True for --all; checks that exactly one of --all and DIED_AT JOB_ID was given."""
    if args.all and (args.died_at is not None or args.job_id is not None):
        raise UsageError("give either --all or DIED_AT JOB_ID, not both")
    if not args.all and (args.died_at is None or args.job_id is None):
        raise UsageError("give DIED_AT JOB_ID (see `workq dead`) or --all")
    return bool(args.all)


def run_retry_dead(args: argparse.Namespace) -> int:
    if args.reason is not None:
        return _retry_dead_by_reason(args)
    client = client_for(args)
    if _one_or_all(args):
        print(f"requeued {client.retry_all_dead_jobs()} dead job(s)")
    else:
        client.retry_dead_job(args.died_at, args.job_id)
        print(f"requeued dead job {args.job_id}")
    return EXIT_OK


def _retry_dead_by_reason(args: argparse.Namespace) -> int:
    if args.died_at is not None or args.job_id is not None:
        raise UsageError("give either --reason TEXT or DIED_AT JOB_ID, not both")
    if not args.reason:
        raise UsageError("--reason needs the text to look for in dead jobs' errors, e.g. --reason 'unknown job'")
    count = client_for(args).retry_dead_jobs(reason=args.reason)
    print(f"requeued {count} dead job(s) whose error contains {args.reason!r}")
    return EXIT_OK


def run_delete_dead(args: argparse.Namespace) -> int:
    client = client_for(args)
    if _one_or_all(args):
        print(f"deleted {client.delete_all_dead_jobs()} dead job(s)")
    else:
        client.delete_dead_job(args.died_at, args.job_id)
        print(f"deleted dead job {args.job_id}")
    return EXIT_OK


def run_pause(args: argparse.Namespace) -> int:
    client_for(args).pause(checked_name(args.name))
    print(f"paused {args.name}: no pool fetches it until `workq unpause {args.name}`")
    return EXIT_OK


def run_unpause(args: argparse.Namespace) -> int:
    client_for(args).unpause(checked_name(args.name))
    print(f"unpaused {args.name}")
    return EXIT_OK


def run_enqueue(args: argparse.Namespace) -> int:
    job_args = _parse_job_args(args.args)
    job: Job | None
    try:
        enqueuer = Enqueuer(args.namespace, args.redis_url)
        if args.unique and args.delay is not None:
            job = enqueuer.enqueue_unique_in(args.name, args.delay, job_args)
        elif args.unique:
            job = enqueuer.enqueue_unique(args.name, job_args)
        elif args.delay is not None:
            job = enqueuer.enqueue_in(args.name, args.delay, job_args)
        else:
            job = enqueuer.enqueue(args.name, job_args)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    if job is None:
        print(f"workq: an identical {args.name} job is already queued or scheduled; nothing enqueued", file=sys.stderr)
        return EXIT_OK
    print(job.to_json())
    _warn_if_unserved(args)
    return EXIT_OK


def _warn_if_unserved(args: argparse.Namespace) -> None:
    """A job no live pool serves waits in its queue, maybe for ever (a mistyped name): say so. It stays enqueued,
    since a pool that serves it may simply not be running yet."""
    client = client_for(args)
    try:
        serving = client.serving_pools()
    except (WorkqError, redis.RedisError) as exc:
        print(f"workq: warning: could not check which pools serve {args.name!r}: {exc}", file=sys.stderr)
        return
    if args.name in serving:
        return
    served = f"live pools serve: {', '.join(sorted(serving))}" if serving else "no worker pool is running there"
    print(
        f"workq: warning: no live worker pool in namespace {client.namespace!r} serves {args.name!r} ({served}); "
        "the job waits in its queue until one does",
        file=sys.stderr,
    )


def _parse_job_args(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--args is not valid JSON: {exc}") from None
    except RecursionError:
        raise UsageError(f"--args nests too deep: args may nest at most {gojson.MAX_DEPTH} levels") from None
    if not isinstance(parsed, dict):
        raise UsageError(f"--args must be a JSON object, got {type(parsed).__name__}")
    return parsed
