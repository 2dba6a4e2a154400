"""The HTML pages: overview, workers, one page per queue, and the scheduled / retry / dead sets, rendered on the
server (the JS in static/ only refreshes them and sends their forms without a reload)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from flask import Blueprint, render_template, request, url_for

from workq.client import Client
from workq.tick_pruner import UNREGISTERED_GRACE
from workq.web import records
from workq.web.api import checked_job_name
from workq.web.paging import Pagination, parse_page
from workq.web.state import dashboard

blueprint = Blueprint("pages", __name__)


@blueprint.get("/")
def overview() -> str:
    state = dashboard()
    now = state.now()
    summary = records.overview(state.client, now)
    return _render("overview.html", "overview", "Overview", summary.counts, now=now, summary=summary)


@blueprint.get("/workers")
def workers() -> str:
    state = dashboard()
    now = state.now()
    busy = records.busy_workers(state.client)
    return _render(
        "workers.html",
        "workers",
        "Workers",
        records.counts(state.client),
        now=now,
        pools=records.pool_rows(state.client, busy, now),
        busy=busy,
    )


@blueprint.get("/queue")
def queue() -> str:
    """The jobs queued for `?job_name=`, next to run first, with Delete per job and Purge."""
    state = dashboard()
    name = checked_job_name(request.args.get("job_name", ""))
    page = parse_page(request.args.get("page"))
    jobs, total = state.client.queued_jobs(name, page)
    return _render(
        "queue.html",
        "queue",
        f"Queue {name}",
        records.counts(state.client),
        now=state.now(),
        job_name=name,
        paused=state.client.is_paused(name),
        jobs=jobs,
        pagination=Pagination(page, total),
        page_query=_query(job_name=name),
        back=queue_url(name, page),
    )


@blueprint.app_template_global()
def queue_url(job_name: str, page: int = 1) -> str:
    """The page of queue `job_name`. Its name travels in the query, percent-encoded with nothing left as is, so
    no name (`..`, `a/b`, `x?y#z`) can become part of the path that a browser would resolve."""
    return url_for("pages.queue") + "?" + _query(job_name=job_name, **({"page": str(page)} if page > 1 else {}))


def _query(**values: str) -> str:
    return urlencode(values, quote_via=quote, safe="")


@blueprint.get("/scheduled")
def scheduled() -> str:
    return _job_set_page(records.JOB_SETS["scheduled"])


@blueprint.get("/scheduled/cron")
def cron_ticks() -> str:
    return _job_set_page(records.JOB_SETS["cron_ticks"])


@blueprint.get("/schedules")
def schedules() -> str:
    state = dashboard()
    return _render(
        "schedules.html",
        "schedules",
        "Schedules",
        records.counts(state.client),
        now=state.now(),
        schedules=state.client.schedules(),
        unregistered_grace=int(UNREGISTERED_GRACE),
    )


@blueprint.get("/retry")
def retry() -> str:
    return _job_set_page(records.JOB_SETS["retry"])


@blueprint.get("/dead")
def dead() -> str:
    return _job_set_page(records.JOB_SETS["dead"])


def _job_set_page(job_set: records.JobSet) -> str:
    state = dashboard()
    page = parse_page(request.args.get("page"))
    jobs, total = job_set.read(state.client, page)
    return _render(
        "jobs.html",
        job_set.set_name,
        f"{job_set.title} jobs",
        records.counts(state.client),
        now=state.now(),
        job_set=job_set,
        jobs=jobs,
        scheduled_tabs=_scheduled_tabs(state.client, job_set, total),
        pagination=Pagination(page, total),
        back=url_for(f"pages.{job_set.slug}", page=page if page > 1 else None),
    )


def _scheduled_tabs(client: Client, job_set: records.JobSet, total: int) -> list[tuple[records.JobSet, int]]:
    """The one-off and cron-tick lists of the scheduled set with their sizes (none for the other sets)."""
    if job_set.set_name != "scheduled":
        return []
    other = records.JOB_SETS["cron_ticks" if job_set.slug == "scheduled" else "scheduled"]
    _, other_total = other.read(client, 1)
    tabs = [(job_set, total), (other, other_total)]
    return sorted(tabs, key=lambda tab: tab[0].slug != "scheduled")


def _render(template: str, page_id: str, title: str, counts: records.Counts, **context: Any) -> str:
    context.setdefault("back", url_for(f"pages.{page_id}"))
    return render_template(template, page_id=page_id, title=title, counts=counts, **context)
