"""The result record a successful run of a job registered with `keep_result` leaves at `result:<id>`."""

from __future__ import annotations

import json

from workq.job import Job


def done_record(job: Job, returned: object, now: float) -> str:
    """`{"state": "done", "job_name", "result", "fails", "last_err", "updated_at"}` as JSON; a return value JSON
    cannot hold raises `TypeError` saying so (the run then fails, like a raising handler)."""
    record = {
        "state": "done",
        "job_name": job.name,
        "result": returned,
        "fails": job.fails,
        "last_err": job.last_err,
        "updated_at": int(now),
    }
    try:
        return json.dumps(record, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(
            f"job {job.name} returned a {type(returned).__name__}, which JSON cannot hold ({exc}); keep_result "
            "stores the handler's return value as JSON: return dicts, lists, strings, numbers, booleans or None"
        ) from None
