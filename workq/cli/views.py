"""Read-only commands: `workq queues | workers | scheduled | schedules | retry | dead`, as aligned tables or
`--json`. The overview of queues, pools and schedules is printed here; the sorted sets' pages in `set_views`."""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

from workq.cli.common import EXIT_OK, client_for
from workq.cli.set_views import run_dead, run_retry, run_scheduled
from workq.cli.tables import ago, nothing, print_json, print_pages, print_table, requested_page, when
from workq.entry_checks import PAGE_SIZE
from workq.queue_rows import queue_rows
from workq.schedules import LastRun
from workq.tick_pruner import UNREGISTERED_GRACE


def add_commands(commands: Any, connection: argparse.ArgumentParser) -> None:
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="machine-readable output")
    paged = argparse.ArgumentParser(add_help=False)
    paged.add_argument("--page", type=int, default=1, metavar="N", help=f"page of {PAGE_SIZE} rows (default 1)")
    for name, run, help_text, parents in (
        (
            "queues",
            run_queues,
            f"queue lengths, latency, today's processed/failed counts and the live pools serving each ({PAGE_SIZE} "
            "a page)",
            [connection, output, paged],
        ),
        ("workers", run_workers, "live worker pools and what their workers are running", [connection, output]),
        (
            "scheduled",
            run_scheduled,
            "one-off scheduled jobs (or cron ticks: --cron), soonest first",
            [connection, output, paged],
        ),
        ("schedules", run_schedules, "cron schedules of live pools: next fire times, last run", [connection, output]),
        ("retry", run_retry, "failed jobs waiting to retry, next first", [connection, output, paged]),
        ("dead", run_dead, "dead jobs, most recent first", [connection, output, paged]),
    ):
        command = commands.add_parser(name, parents=parents, help=help_text)
        command.set_defaults(command=run)
        if name == "scheduled":
            command.add_argument("--cron", action="store_true", help="list the ticks of cron schedules instead")


def run_queues(args: argparse.Namespace) -> int:
    client = client_for(args)
    queues = queue_rows(client)
    page = requested_page(args)
    rows = [
        {
            "job_name": queue.job_name,
            "count": queue.count,
            "latency": queue.latency,
            "paused": queue.paused,
            "processed_today": queue.processed,
            "failed_today": queue.failed,
            "pools": queue.pools,
            "problem": queue.problem,
        }
        for queue in queues[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    ]
    if args.json:
        return print_json(rows)
    headers = ["JOB", "QUEUED", "LATENCY", "PAUSED", "PROCESSED TODAY", "FAILED TODAY", "POOLS"]
    table = [
        [
            row["job_name"],
            row["count"],
            f"{row['latency']} s",
            "yes" if row["paused"] else "",
            row["processed_today"],
            row["failed_today"],
            row["pools"] or "none: no live pool serves it",
        ]
        for row in rows
    ]
    empty = nothing(client, "no known jobs", len(queues))
    print_table(headers, table, empty=empty, problems=[str(row["problem"]) for row in rows])
    if page > 1 or len(queues) > PAGE_SIZE:
        print_pages(page, len(queues), "queues")
    return EXIT_OK


def run_workers(args: argparse.Namespace) -> int:
    client = client_for(args)
    pools = client.worker_pool_heartbeats()
    busy = [observation for observation in client.worker_observations() if observation.is_busy]
    if args.json:
        return print_json(
            {
                "worker_pools": [dataclasses.asdict(pool) for pool in pools],
                "busy_workers": [dataclasses.asdict(worker) for worker in busy],
            }
        )
    now = int(time.time())
    print_table(
        ["POOL", "HOST", "PID", "CONCURRENCY", "JOBS", "STARTED", "LAST HEARTBEAT"],
        [
            [
                pool.worker_pool_id,
                pool.host,
                pool.pid,
                pool.concurrency,
                ",".join(pool.job_names),
                when(pool.started_at),
                ago(now, pool.heartbeat_at),
            ]
            for pool in pools
        ],
        empty=nothing(client, "no live worker pools"),
        problems=[pool.problem for pool in pools],
    )
    print()
    print_table(
        ["WORKER", "JOB", "JOB ID", "ATTEMPT", "ENQUEUED", "RUNNING FOR", "CHECKIN", "ARGS"],
        [
            [
                worker.worker_id,
                worker.job_name,
                worker.job_id,
                worker.attempt or "-",
                when(worker.enqueued_at),
                ago(now, worker.started_at, "s"),
                worker.checkin,
                worker.args_json,
            ]
            for worker in busy
        ],
        empty="no busy workers",
        problems=[worker.problem for worker in busy],
    )
    return EXIT_OK


def run_schedules(args: argparse.Namespace) -> int:
    client = client_for(args)
    schedules = client.schedules()
    if args.json:
        return print_json([dataclasses.asdict(schedule) for schedule in schedules])
    now = int(time.time())
    print_table(
        ["JOB", "SPEC", "NEXT", "THEN", "LAST RUN", "POOLS", "TICKS ADDED UNTIL"],
        [
            [
                schedule.job_name,
                f"{schedule.spec} ({schedule.timezone})" if schedule.timezone else schedule.spec,
                when(schedule.next_fire_times[0]) + _in(now, schedule.next_fire_times[0])
                if schedule.next_fire_times
                else "-",
                ", ".join(time.strftime("%H:%M:%S", time.gmtime(at)) for at in schedule.next_fire_times[1:]),
                _last_run(schedule.last_run, now),
                len(schedule.pool_ids) or f"none: future ticks are dropped after {UNREGISTERED_GRACE:.0f} s",
                when(schedule.enqueued_until),
            ]
            for schedule in schedules
        ],
        empty=nothing(client, "no cron schedules registered by live pools"),
        problems=[schedule.problem for schedule in schedules],
    )
    return EXIT_OK


def _in(now: int, epoch: int) -> str:
    return f" (in {epoch - now} s)" if epoch >= now else ""


def _last_run(last_run: LastRun | None, now: int) -> str:
    if last_run is None:
        return "-"
    late = last_run.started_at - last_run.fire_at
    return f"{when(last_run.fire_at)}{f' (started {late} s late)' if late > 0 else ''}, {ago(now, last_run.fire_at)}"
