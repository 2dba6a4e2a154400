"""Read-only commands: `workq queues | workers | scheduled | retry | dead`, as aligned tables or `--json`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Sequence
from typing import Any

from workq.cli.common import EXIT_OK, UsageError, client_for
from workq.client import LAST_EPOCH, PAGE_SIZE, PROBLEM_FIELD
from workq.job import Job

CELL_WIDTH = 60
PROBLEM_WIDTH = 200
"""A bad entry's problem is printed whole (up to this), since it is what the reader has to act on."""


def add_commands(commands: Any, connection: argparse.ArgumentParser) -> None:
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="machine-readable output")
    paged = argparse.ArgumentParser(add_help=False)
    paged.add_argument("--page", type=int, default=1, help=f"page of {PAGE_SIZE} jobs (default 1)")
    for name, run, help_text, parents in (
        ("queues", run_queues, "queue lengths, latency and today's processed/failed counts", [connection, output]),
        ("workers", run_workers, "live worker pools and what their workers are running", [connection, output]),
        ("scheduled", run_scheduled, "scheduled jobs, soonest first", [connection, output, paged]),
        ("retry", run_retry, "failed jobs waiting to retry, next first", [connection, output, paged]),
        ("dead", run_dead, "dead jobs, most recent first", [connection, output, paged]),
    ):
        commands.add_parser(name, parents=parents, help=help_text).set_defaults(command=run)


def run_queues(args: argparse.Namespace) -> int:
    client = client_for(args)
    stats = {entry.job_name: entry for entry in client.job_stats()}
    rows = [
        {
            "job_name": queue.job_name,
            "count": queue.count,
            "latency": queue.latency,
            "paused": queue.paused,
            "processed_today": stats[queue.job_name].processed if queue.job_name in stats else 0,
            "failed_today": stats[queue.job_name].failed if queue.job_name in stats else 0,
            "problem": _joined(queue.problem, stats[queue.job_name].problem if queue.job_name in stats else ""),
        }
        for queue in client.queues()
    ]
    if args.json:
        return _print_json(rows)
    headers = ["JOB", "QUEUED", "LATENCY", "PAUSED", "PROCESSED TODAY", "FAILED TODAY"]
    table = [
        [
            row["job_name"],
            row["count"],
            f"{row['latency']} s",
            "yes" if row["paused"] else "",
            row["processed_today"],
            row["failed_today"],
        ]
        for row in rows
    ]
    _print_table(headers, table, empty="no known jobs", problems=[str(row["problem"]) for row in rows])
    return EXIT_OK


def run_workers(args: argparse.Namespace) -> int:
    client = client_for(args)
    pools = client.worker_pool_heartbeats()
    busy = [observation for observation in client.worker_observations() if observation.is_busy]
    if args.json:
        return _print_json(
            {
                "worker_pools": [dataclasses.asdict(pool) for pool in pools],
                "busy_workers": [dataclasses.asdict(worker) for worker in busy],
            }
        )
    now = int(time.time())
    _print_table(
        ["POOL", "HOST", "PID", "CONCURRENCY", "JOBS", "STARTED", "LAST HEARTBEAT"],
        [
            [
                pool.worker_pool_id,
                pool.host,
                pool.pid,
                pool.concurrency,
                ",".join(pool.job_names),
                _when(pool.started_at),
                _ago(now, pool.heartbeat_at),
            ]
            for pool in pools
        ],
        empty="no live worker pools",
        problems=[pool.problem for pool in pools],
    )
    print()
    _print_table(
        ["WORKER", "JOB", "JOB ID", "RUNNING FOR", "CHECKIN", "ARGS"],
        [
            [
                worker.worker_id,
                worker.job_name,
                worker.job_id,
                _ago(now, worker.started_at, "s"),
                worker.checkin,
                worker.args_json,
            ]
            for worker in busy
        ],
        empty="no busy workers",
        problems=[worker.problem for worker in busy],
    )
    return EXIT_OK


def run_scheduled(args: argparse.Namespace) -> int:
    jobs, total = client_for(args).scheduled_jobs(_page(args))
    return _print_jobs(args, jobs, total, "run_at", "RUN AT")


def run_retry(args: argparse.Namespace) -> int:
    jobs, total = client_for(args).retry_jobs(_page(args))
    return _print_jobs(args, jobs, total, "retry_at", "RETRY AT")


def run_dead(args: argparse.Namespace) -> int:
    jobs, total = client_for(args).dead_jobs(_page(args))
    return _print_jobs(args, jobs, total, "died_at", "DIED AT")


def _page(args: argparse.Namespace) -> int:
    if args.page < 1:
        raise UsageError(f"--page must be >= 1, got {args.page}")
    return int(args.page)


def _print_jobs(args: argparse.Namespace, jobs: Sequence[Job], total: int, score_field: str, score_title: str) -> int:
    if args.json:
        return _print_json({"page": args.page, "total": total, "jobs": [_job_record(job, score_field) for job in jobs]})
    _print_table(
        [score_title, score_field.upper(), "JOB", "ID", "FAILS", "ERROR", "ARGS"],
        [
            [
                _when(getattr(job, score_field)),
                getattr(job, score_field),
                job.name,
                job.id,
                job.fails,
                job.last_err,
                _compact_json(job.args),
            ]
            for job in jobs
        ],
        empty="none",
        problems=[str(job.extra.get(PROBLEM_FIELD, "")) for job in jobs],
    )
    pages = max(1, -(-total // PAGE_SIZE))
    print(f"\npage {args.page} of {pages}; {total} in all")
    return EXIT_OK


def _job_record(job: Job, score_field: str) -> dict[str, Any]:
    """Fields other writers added come first, so they cannot hide ours; a bad entry ends with `problem`."""
    record: dict[str, Any] = {key: value for key, value in job.extra.items() if key != PROBLEM_FIELD}
    record.update(
        {
            score_field: getattr(job, score_field),
            "name": job.name,
            "id": job.id,
            "enqueued_at": job.enqueued_at,
            "args": job.args,
            "unique": job.unique,
            "fails": job.fails,
            "err": job.last_err,
            "failed_at": job.failed_at,
        }
    )
    if job.extra.get(PROBLEM_FIELD):
        record["problem"] = job.extra[PROBLEM_FIELD]
    return record


def _when(epoch: int) -> str:
    if not epoch:
        return "-"
    if not 0 < epoch <= LAST_EPOCH:
        return "not a time"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def _ago(now: int, epoch: int, suffix: str = "s ago") -> str:
    return f"{now - epoch} {suffix}" if 0 < epoch <= LAST_EPOCH else _when(epoch)


def _joined(*problems: str) -> str:
    return "; ".join(problem for problem in problems if problem)


def _compact_json(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (RecursionError, ValueError):
        return "(nested too deep to show)"


def _print_json(value: object) -> int:
    print(json.dumps(value, ensure_ascii=False, indent=2))
    return EXIT_OK


def _print_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, empty: str, problems: Sequence[str] = ()
) -> None:
    """Aligned columns; when any row is a bad entry, a last PROBLEM column says what is wrong with it."""
    if not rows:
        print(f"({empty})")
        return
    cells = [[_cell(value) for value in row] for row in rows]
    if any(problems):
        headers = [*headers, "PROBLEM"]
        cells = [[*row, _cell(problem, PROBLEM_WIDTH)] for row, problem in zip(cells, problems, strict=True)]
    widths = [max(len(header), *(len(row[index]) for row in cells)) for index, header in enumerate(headers)]
    for row in [list(headers), *cells]:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())


def _cell(value: object, width: int = CELL_WIDTH) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"
