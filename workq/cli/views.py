"""Read-only commands: `workq queues | workers | scheduled | schedules | retry | dead`, as aligned tables or
`--json`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Sequence
from typing import Any

from workq.cli.common import EXIT_OK, UsageError, client_for
from workq.client import LAST_EPOCH, PAGE_SIZE, PROBLEM_FIELD, Client
from workq.job import Job
from workq.scheduled_split import ScheduledKind
from workq.schedules import LastRun
from workq.tick_pruner import UNREGISTERED_GRACE

CELL_WIDTH = 60
PROBLEM_WIDTH = 200
"""A bad entry's problem is printed whole (up to this), since it is what the reader has to act on."""


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
    stats = {entry.job_name: entry for entry in client.job_stats()}
    serving = client.serving_pools()
    queues = client.queues()
    page = _page(args)
    rows = [
        {
            "job_name": queue.job_name,
            "count": queue.count,
            "latency": queue.latency,
            "paused": queue.paused,
            "processed_today": stats[queue.job_name].processed if queue.job_name in stats else 0,
            "failed_today": stats[queue.job_name].failed if queue.job_name in stats else 0,
            "pools": serving.get(queue.job_name, 0),
            "problem": _joined(queue.problem, stats[queue.job_name].problem if queue.job_name in stats else ""),
        }
        for queue in queues[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    ]
    if args.json:
        return _print_json(rows)
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
    empty = _nothing(client, "no known jobs", len(queues))
    _print_table(headers, table, empty=empty, problems=[str(row["problem"]) for row in rows])
    if page > 1 or len(queues) > PAGE_SIZE:
        _print_pages(page, len(queues), "queues")
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
        empty=_nothing(client, "no live worker pools"),
        problems=[pool.problem for pool in pools],
    )
    print()
    _print_table(
        ["WORKER", "JOB", "JOB ID", "ATTEMPT", "ENQUEUED", "RUNNING FOR", "CHECKIN", "ARGS"],
        [
            [
                worker.worker_id,
                worker.job_name,
                worker.job_id,
                worker.attempt or "-",
                _when(worker.enqueued_at),
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
    """One-off jobs by default, cron ticks with --cron: the ticks of a frequent spec would bury the one-off jobs."""
    client = client_for(args)
    kind: ScheduledKind = "cron" if args.cron else "one_off"
    jobs, total = client.scheduled_jobs(_page(args), kind=kind)
    _, others = client.scheduled_jobs(1, kind="one_off" if args.cron else "cron")
    other_note = (
        f"{others} one-off scheduled job(s) not shown: `workq scheduled`"
        if args.cron
        else f"{others} cron tick(s) not shown: `workq scheduled --cron`, `workq schedules`"
    )
    return _print_jobs(
        args,
        client,
        jobs,
        total,
        "run_at",
        score_title="RUN AT",
        json_extra={"kind": kind, "not_shown": others},
        note=other_note,
    )


def run_retry(args: argparse.Namespace) -> int:
    client = client_for(args)
    jobs, total = client.retry_jobs(_page(args))
    return _print_jobs(args, client, jobs, total, "retry_at", score_title="RETRY AT")


def run_dead(args: argparse.Namespace) -> int:
    client = client_for(args)
    jobs, total = client.dead_jobs(_page(args))
    return _print_jobs(args, client, jobs, total, "died_at", score_title="DIED AT")


def run_schedules(args: argparse.Namespace) -> int:
    client = client_for(args)
    schedules = client.schedules()
    if args.json:
        return _print_json([dataclasses.asdict(schedule) for schedule in schedules])
    now = int(time.time())
    _print_table(
        ["JOB", "SPEC", "NEXT", "THEN", "LAST RUN", "POOLS", "TICKS ADDED UNTIL"],
        [
            [
                schedule.job_name,
                f"{schedule.spec} ({schedule.timezone})" if schedule.timezone else schedule.spec,
                _when(schedule.next_fire_times[0]) + _in(now, schedule.next_fire_times[0])
                if schedule.next_fire_times
                else "-",
                ", ".join(time.strftime("%H:%M:%S", time.gmtime(at)) for at in schedule.next_fire_times[1:]),
                _last_run(schedule.last_run, now),
                len(schedule.pool_ids) or f"none: future ticks are dropped after {UNREGISTERED_GRACE:.0f} s",
                _when(schedule.enqueued_until),
            ]
            for schedule in schedules
        ],
        empty=_nothing(client, "no cron schedules registered by live pools"),
        problems=[schedule.problem for schedule in schedules],
    )
    return EXIT_OK


def _page(args: argparse.Namespace) -> int:
    if args.page < 1:
        raise UsageError(f"--page must be >= 1, got {args.page}")
    return int(args.page)


def _print_jobs(
    args: argparse.Namespace,
    client: Client,
    jobs: Sequence[Job],
    total: int,
    score_field: str,
    *,
    score_title: str,
    json_extra: dict[str, Any] | None = None,
    note: str = "",
) -> int:
    if args.json:
        records = [_job_record(job, score_field) for job in jobs]
        return _print_json({"page": args.page, "total": total, **(json_extra or {}), "jobs": records})
    _print_table(
        [score_title, score_field.upper(), "JOB", "ID", "FIRST ENQUEUED", "FAILS", "ERROR", "ARGS"],
        [
            [
                _when(getattr(job, score_field)),
                getattr(job, score_field),
                job.name,
                job.id,
                _when(job.first_enqueued_at),
                job.fails,
                job.last_err,
                _compact_json(job.args),
            ]
            for job in jobs
        ],
        empty=_nothing(client, "none", total),
        problems=[str(job.extra.get(PROBLEM_FIELD, "")) for job in jobs],
    )
    _print_pages(args.page, total, "in all")
    if json_extra and json_extra.get("not_shown") and note:
        print(note)
    return EXIT_OK


def _print_pages(page: int, total: int, what: str) -> None:
    pages = max(1, -(-total // PAGE_SIZE))
    print(f"\npage {page} of {pages}; {total} {what}")


def _nothing(client: Client, what: str, total: int = 0) -> str:
    """What an empty table says: past the last page, or nothing at all in this namespace (and how to look in
    another, since an unset --namespace silently means `workq`)."""
    if total:
        return f"nothing on this page; {total} in all"
    return f"{what} in namespace {client.namespace!r}; for another namespace pass --namespace NS or set WORKQ_NAMESPACE"


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
            "first_enqueued_at": job.first_enqueued_at,
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


def _in(now: int, epoch: int) -> str:
    return f" (in {epoch - now} s)" if epoch >= now else ""


def _last_run(last_run: LastRun | None, now: int) -> str:
    if last_run is None:
        return "-"
    late = last_run.started_at - last_run.fire_at
    return f"{_when(last_run.fire_at)}{f' (started {late} s late)' if late > 0 else ''}, {_ago(now, last_run.fire_at)}"


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
