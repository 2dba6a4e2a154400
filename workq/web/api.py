"""The JSON API under /api/, mirroring gocraft/work's web UI. The pages' buttons post to these same endpoints: a
form names the page to return to in `next` and is redirected there (303); API callers get JSON."""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import Blueprint, jsonify, redirect, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest

from workq.job import check_job_name
from workq.web import records
from workq.web.paging import parse_page
from workq.web.security import is_return_path
from workq.web.state import dashboard

blueprint = Blueprint("api", __name__, url_prefix="/api")


@blueprint.get("/queues")
def queues() -> ResponseReturnValue:
    return jsonify([dataclasses.asdict(row) for row in records.queue_rows(dashboard().client)])


@blueprint.get("/worker_pools")
def worker_pools() -> ResponseReturnValue:
    return jsonify([dataclasses.asdict(pool) for pool in dashboard().client.worker_pool_heartbeats()])


@blueprint.get("/busy_workers")
def busy_workers() -> ResponseReturnValue:
    return jsonify([dataclasses.asdict(worker) for worker in records.busy_workers(dashboard().client)])


@blueprint.get("/scheduled_jobs")
def scheduled_jobs() -> ResponseReturnValue:
    return _job_page(records.JOB_SETS["scheduled"])


@blueprint.get("/retry_jobs")
def retry_jobs() -> ResponseReturnValue:
    return _job_page(records.JOB_SETS["retry"])


@blueprint.get("/dead_jobs")
def dead_jobs() -> ResponseReturnValue:
    return _job_page(records.JOB_SETS["dead"])


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


@blueprint.post("/retry_dead_job/<int(signed=True):died_at>/<path:job_id>")
def retry_dead_job(died_at: int, job_id: str) -> ResponseReturnValue:
    dashboard().client.retry_dead_job(died_at, job_id)
    return _done()


@blueprint.post("/delete_dead_job/<int(signed=True):died_at>/<path:job_id>")
def delete_dead_job(died_at: int, job_id: str) -> ResponseReturnValue:
    dashboard().client.delete_dead_job(died_at, job_id)
    return _done()


@blueprint.post("/retry_all_dead_jobs")
def retry_all_dead_jobs() -> ResponseReturnValue:
    return _done(count=dashboard().client.retry_all_dead_jobs())


@blueprint.post("/delete_all_dead_jobs")
def delete_all_dead_jobs() -> ResponseReturnValue:
    return _done(count=dashboard().client.delete_all_dead_jobs())


@blueprint.post("/delete_retry_job/<int(signed=True):retry_at>/<path:job_id>")
def delete_retry_job(retry_at: int, job_id: str) -> ResponseReturnValue:
    dashboard().client.delete_retry_job(retry_at, job_id)
    return _done()


@blueprint.post("/delete_scheduled_job/<int(signed=True):run_at>/<path:job_id>")
def delete_scheduled_job(run_at: int, job_id: str) -> ResponseReturnValue:
    dashboard().client.delete_scheduled_job(run_at, job_id)
    return _done()


@blueprint.post("/pause/<path:job_name>")
def pause(job_name: str) -> ResponseReturnValue:
    dashboard().client.pause(_job_name(job_name))
    return _done()


@blueprint.post("/unpause/<path:job_name>")
def unpause(job_name: str) -> ResponseReturnValue:
    dashboard().client.unpause(_job_name(job_name))
    return _done()


def _job_page(job_set: records.JobSet) -> ResponseReturnValue:
    jobs, total = job_set.read(dashboard().client, parse_page(request.args.get("page")))
    return jsonify({"count": total, "jobs": [records.job_record(job, job_set.score_field) for job in jobs]})


def _job_name(text: str) -> str:
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
