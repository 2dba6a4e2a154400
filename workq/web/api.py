"""The JSON API under /api/, mirroring gocraft/work's web UI. The pages' buttons post to these same endpoints: a
form names the page to return to in `next` and is redirected there (303); API callers get JSON.

Each action on one job or queue takes its values either in the path, as gocraft/work's UI does (percent-encode
them: the rest of the path is the value, exactly), or in the form body at the bare action path. The pages use the
body, so no job name or id ever becomes part of a URL that a browser could resolve (`..`) into another action."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from flask import Blueprint, jsonify, redirect, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest, NotFound

from workq.job import check_job_name
from workq.queue_rows import queue_rows
from workq.scheduled_split import KINDS
from workq.web import records
from workq.web.paging import parse_page
from workq.web.security import is_return_path
from workq.web.state import dashboard

blueprint = Blueprint("api", __name__, url_prefix="/api")
WHOLE_NUMBER = re.compile(r"-?[0-9]{1,309}")
"""Up to the 309 digits of the largest score Redis holds (1.8e308), so every entry a view lists can be named."""


@blueprint.get("/queues")
def queues() -> ResponseReturnValue:
    return jsonify([dataclasses.asdict(row) for row in queue_rows(dashboard().client)])


@blueprint.get("/worker_pools")
def worker_pools() -> ResponseReturnValue:
    return jsonify([dataclasses.asdict(pool) for pool in dashboard().client.worker_pool_heartbeats()])


@blueprint.get("/busy_workers")
def busy_workers() -> ResponseReturnValue:
    return jsonify([dataclasses.asdict(worker) for worker in records.busy_workers(dashboard().client)])


@blueprint.get("/scheduled_jobs")
def scheduled_jobs() -> ResponseReturnValue:
    """Every scheduled job, as gocraft/work's UI lists them; `?kind=one_off` leaves cron ticks out, `?kind=cron`
    lists only them."""
    kind = request.args.get("kind", "all")
    if kind not in KINDS:
        raise BadRequest(f"kind must be one of {', '.join(KINDS)}, got {kind[:40]!r}")
    page = parse_page(request.args.get("page"))
    jobs, total = dashboard().client.scheduled_jobs(page, kind=kind)
    return jsonify({"count": total, "jobs": [records.job_record(job, "run_at") for job in jobs]})


@blueprint.get("/schedules")
def schedules() -> ResponseReturnValue:
    """The cron schedules of live pools (and those with ticks ahead that no live pool registers any more)."""
    return jsonify([dataclasses.asdict(schedule) for schedule in dashboard().client.schedules()])


@blueprint.get("/retry_jobs")
def retry_jobs() -> ResponseReturnValue:
    return _job_page(records.JOB_SETS["retry"])


@blueprint.get("/dead_jobs")
def dead_jobs() -> ResponseReturnValue:
    return _job_page(records.JOB_SETS["dead"])


@blueprint.get("/queued_jobs")
def queued_jobs() -> ResponseReturnValue:
    """A page of `?job_name=`'s queue, next to run first."""
    name = checked_job_name(request.args.get("job_name", ""))
    jobs, total = dashboard().client.queued_jobs(name, parse_page(request.args.get("page")))
    return jsonify({"count": total, "jobs": [records.job_record(job, "enqueued_at") for job in jobs]})


@blueprint.get("/job_status/<path:job_id>")
def job_status(job_id: str) -> ResponseReturnValue:
    """Where a job is (`Client.job_status`); 404 when Redis knows nothing of it."""
    status = dashboard().client.job_status(job_id)
    if status is None:
        raise NotFound(f"no job {job_id}: never enqueued, deleted, or finished without keep_result")
    return jsonify(dataclasses.asdict(status))


@blueprint.get("/stats")
def stats() -> ResponseReturnValue:
    """Today's totals and per-name outcomes, the sizes of the sorted sets, and how busy the pools are."""
    state = dashboard()
    overview = records.overview(state.client, state.now())
    return jsonify(
        {
            "day": overview.day,
            "queued": overview.queued,
            "processed": overview.processed,
            "failed": overview.failed,
            "error_rate": overview.error_rate,
            "scheduled": overview.counts.scheduled,
            "retry": overview.counts.retry,
            "dead": overview.counts.dead,
            "worker_pools": len(overview.pools),
            "concurrency": overview.concurrency,
            "busy_workers": overview.busy_workers,
            "jobs": [
                {
                    "job_name": row.job_name,
                    "processed": row.processed,
                    "failed": row.failed,
                    "error_rate": row.error_rate,
                }
                for row in overview.queues
            ],
        }
    )


@blueprint.post("/retry_dead_job")
@blueprint.post("/retry_dead_job/<died_at>/<path:job_id>")
def retry_dead_job(died_at: str | None = None, job_id: str | None = None) -> ResponseReturnValue:
    dashboard().client.retry_dead_job(_score("died_at", died_at), _value("job_id", job_id))
    return _done()


@blueprint.post("/delete_dead_job")
@blueprint.post("/delete_dead_job/<died_at>/<path:job_id>")
def delete_dead_job(died_at: str | None = None, job_id: str | None = None) -> ResponseReturnValue:
    dashboard().client.delete_dead_job(_score("died_at", died_at), _value("job_id", job_id))
    return _done()


@blueprint.post("/retry_all_dead_jobs")
def retry_all_dead_jobs() -> ResponseReturnValue:
    return _done(count=dashboard().client.retry_all_dead_jobs())


@blueprint.post("/delete_all_dead_jobs")
def delete_all_dead_jobs() -> ResponseReturnValue:
    return _done(count=dashboard().client.delete_all_dead_jobs())


@blueprint.post("/delete_retry_job")
@blueprint.post("/delete_retry_job/<retry_at>/<path:job_id>")
def delete_retry_job(retry_at: str | None = None, job_id: str | None = None) -> ResponseReturnValue:
    dashboard().client.delete_retry_job(_score("retry_at", retry_at), _value("job_id", job_id))
    return _done()


@blueprint.post("/delete_scheduled_job")
@blueprint.post("/delete_scheduled_job/<run_at>/<path:job_id>")
def delete_scheduled_job(run_at: str | None = None, job_id: str | None = None) -> ResponseReturnValue:
    dashboard().client.delete_scheduled_job(_score("run_at", run_at), _value("job_id", job_id))
    return _done()


@blueprint.post("/cancel")
@blueprint.post("/cancel/<path:job_id>")
def cancel(job_id: str | None = None) -> ResponseReturnValue:
    """Cancel a job wherever it is; `was` says where it was (see `Client.cancel`)."""
    return _done(was=dashboard().client.cancel(_value("job_id", job_id)))


@blueprint.post("/delete_queued_job")
@blueprint.post("/delete_queued_job/<job_name>/<path:job_id>")
def delete_queued_job(job_name: str | None = None, job_id: str | None = None) -> ResponseReturnValue:
    """A job name holding `/` cannot be told apart from its id in the path: send such a name in the form body."""
    name = checked_job_name(_value("job_name", job_name))
    dashboard().client.delete_queued_job(name, _value("job_id", job_id))
    return _done()


@blueprint.post("/purge")
@blueprint.post("/purge/<path:job_name>")
def purge(job_name: str | None = None) -> ResponseReturnValue:
    return _done(count=dashboard().client.purge(checked_job_name(_value("job_name", job_name))))


@blueprint.post("/pause")
@blueprint.post("/pause/<path:job_name>")
def pause(job_name: str | None = None) -> ResponseReturnValue:
    dashboard().client.pause(checked_job_name(_value("job_name", job_name)))
    return _done()


@blueprint.post("/unpause")
@blueprint.post("/unpause/<path:job_name>")
def unpause(job_name: str | None = None) -> ResponseReturnValue:
    dashboard().client.unpause(checked_job_name(_value("job_name", job_name)))
    return _done()


def _value(field: str, from_path: str | None) -> str:
    """The value the path carries, else the form field of that name (400 when neither has one)."""
    value = from_path if from_path is not None else request.form.get(field)
    if not value:
        raise BadRequest(f"{field} is missing: give it in the path or as a form field")
    return value


def _score(field: str, from_path: str | None) -> int:
    """A sorted-set score (epoch seconds) as a whole number, from the path or the form; 400 for anything else."""
    text = _value(field, from_path)
    if WHOLE_NUMBER.fullmatch(text) is None:
        raise BadRequest(f"{field} must be a whole number, got {text[:60]!r}")
    return int(text)


def _job_page(job_set: records.JobSet) -> ResponseReturnValue:
    jobs, total = job_set.read(dashboard().client, parse_page(request.args.get("page")))
    return jsonify({"count": total, "jobs": [records.job_record(job, job_set.score_field) for job in jobs]})


def checked_job_name(text: str) -> str:
    """`text` as a job name; 400 saying what is wrong with it otherwise."""
    try:
        return check_job_name(text)
    except (TypeError, ValueError) as exc:
        raise BadRequest(str(exc)) from None


@blueprint.before_request
def check_return_path() -> None:
    """Refuse a bad `next` before the action runs, not after it has changed something."""
    back = request.form.get("next") if request.method == "POST" else None
    if back is not None and not is_return_path(back):
        raise BadRequest(f"next must be a path of this dashboard, got {back!r}")


def _done(**result: Any) -> ResponseReturnValue:
    """JSON for API callers; for a form that says where it came from, a 303 back to that page."""
    back = request.form.get("next")
    if back is None:
        return jsonify(status="ok", **result)
    return redirect(back, code=303)
