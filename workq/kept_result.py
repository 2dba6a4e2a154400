"""The result records runs leave at `result:<id>`: "done" (with `keep_result`), "cancelled" (a cancelled run)."""

from __future__ import annotations

import json

from workq.job import Job


def cancelled_record(job: Job, now: float) -> str:
    """The record of a run that was cancelled (`job.last_err` says so), as `Client.cancel` writes for a waiting job."""
    return json.dumps(_record("cancelled", job, None, now))


def done_record(job: Job, returned: object, now: float) -> str:
    """`{"state": "done", "job_name", "result", "fails", "last_err", "updated_at"}` as JSON; a return value JSON
    cannot hold raises `TypeError` saying so (the run then fails, like a raising handler)."""
    record = _record("done", job, returned, now)
    try:
        return json.dumps(record, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(
            f"job {job.name} returned a {type(returned).__name__}, which JSON cannot hold ({exc}); keep_result "
            "stores the handler's return value as JSON: return dicts, lists, strings, numbers, booleans or None"
        ) from None


def _record(state: str, job: Job, result: object, now: float) -> dict[str, object]:
    return {
        "state": state,
        "job_name": job.name,
        "result": result,
        "fails": job.fails,
        "last_err": job.last_err,
        "updated_at": int(now),
    }
