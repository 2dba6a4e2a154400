"""`workq scheduled | retry | dead`: a page of a sorted set's jobs, as a table or `--json` records."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from workq.cli.common import EXIT_OK, client_for
from workq.cli.tables import compact_json, nothing, print_json, print_pages, print_table, requested_page, when
from workq.client import Client
from workq.entry_checks import listed_record, problem_of
from workq.job import Job
from workq.scheduled_split import ScheduledKind


def run_scheduled(args: argparse.Namespace) -> int:
    """One-off jobs by default, cron ticks with --cron: the ticks of a frequent spec would bury the one-off jobs."""
    client = client_for(args)
    kind: ScheduledKind = "cron" if args.cron else "one_off"
    jobs, total = client.scheduled_jobs(requested_page(args), kind=kind)
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
    jobs, total = client.retry_jobs(requested_page(args))
    return _print_jobs(args, client, jobs, total, "retry_at", score_title="RETRY AT")


def run_dead(args: argparse.Namespace) -> int:
    client = client_for(args)
    jobs, total = client.dead_jobs(requested_page(args))
    return _print_jobs(args, client, jobs, total, "died_at", score_title="DIED AT")


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
        return print_json({"page": args.page, "total": total, **(json_extra or {}), "jobs": records})
    print_table(
        [score_title, score_field.upper(), "JOB", "ID", "FIRST ENQUEUED", "FAILS", "ERROR", "ARGS"],
        [
            [
                when(getattr(job, score_field)),
                getattr(job, score_field),
                job.name,
                job.id,
                when(job.first_enqueued_at),
                job.fails,
                job.last_err,
                compact_json(job.args),
            ]
            for job in jobs
        ],
        empty=nothing(client, "none", total),
        problems=[problem_of(job) for job in jobs],
    )
    print_pages(args.page, total, "in all")
    if json_extra and json_extra.get("not_shown") and note:
        print(note)
    return EXIT_OK


def _job_record(job: Job, score_field: str) -> dict[str, Any]:
    return listed_record(
        job,
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
        },
    )
