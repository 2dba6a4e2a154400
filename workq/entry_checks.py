"""Values read from Redis for people to look at (listed jobs, heartbeat and counter fields), each checked: whatever
is wrong with one is named beside it instead of failing the whole page it is on."""

from __future__ import annotations

import math
from typing import Any, TypeVar

from workq.connection import reply_text
from workq.job import DeadJob, Job, RetryJob, ScheduledJob
from workq.job_lookup import MALFORMED_PREFIX, decode_member, missing_id

PAGE_SIZE = 20
PROBLEM_FIELD = "workq_problem"
"""The `extra` key of a listed job whose entry in Redis is wrong (a score of inf, a time past year 9999, negative
fails, bytes that are not a job): what is wrong, for the CLI and dashboard to show. Only views carry it."""
LAST_EPOCH = 253_402_300_799
"""9999-12-31 23:59:59 UTC: a time after it (or before 1970) in Redis is a corrupt value, not a moment to show."""

View = TypeVar("View", ScheduledJob, RetryJob, DeadJob)
_Listed = TypeVar("_Listed", bound=Job)


def check_page(page: object) -> None:
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise ValueError(f"page must be an int >= 1, got {page!r}")


def listed(member: bytes, score: float, view: type[View], score_field: str) -> View:
    """One entry of a sorted set as its view; whatever is wrong with it (the member or its score) is named under
    `PROBLEM_FIELD` instead of failing the whole page."""
    job = decode_member(member)
    problems: list[str] = []
    return marked(job.as_view(view, **{score_field: checked_time(score, score_field, problems)}), member, problems)


def marked(job: _Listed, member: bytes, problems: list[str]) -> _Listed:
    """`job` (read from `member`) with what is wrong with it, and `problems` already found, under `PROBLEM_FIELD`."""
    if job.id.startswith(MALFORMED_PREFIX):
        problems.insert(0, job.last_err)
    if job.id == missing_id(member):
        problems.append(f"the job has no id (listed as {job.id})")
    checked_time(job.enqueued_at, "t", problems)
    checked_time(job.failed_at, "failed_at", problems)
    if job.fails < 0:
        problems.append(f"fails is negative ({job.fails})")
    if problems:
        job.extra = {**job.extra, PROBLEM_FIELD: "; ".join(problems)}
    return job


def checked_time(value: float, name: str, problems: list[str]) -> int:
    """`value` as epoch seconds (`shown_score`), noting it when it is not a time between 1970 and 9999."""
    if not 0 <= value <= LAST_EPOCH:
        problems.append(f"{name} {value:g} is not a time between 1970 and 9999")
    return shown_score(value)


def shown_score(score: float) -> int:
    """A score as a view shows it: whole seconds (a fraction dropped), 0 for ±inf, which an int cannot hold."""
    return int(score) if math.isfinite(score) else 0


def whole_number(value: bytes | str | None, name: str = "", problems: list[str] | None = None) -> int:
    """A counter or id field as a whole number >= 0 (0 when absent); anything else reads as 0 and, with
    `problems`, is noted there under `name`."""
    if value is None:
        return 0
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if math.isfinite(number) and number >= 0:
        return int(value) if reply_text(value).strip().isdigit() else int(number)
    if problems is not None:
        problems.append(f"{name} is {reply_text(value)[:40]!r}, not a whole number >= 0")
    return 0


def checked_time_field(value: bytes | None, name: str, problems: list[str]) -> int:
    """A hash field holding epoch seconds: a whole number that is a time, each failure noted under `name`."""
    return checked_time(whole_number(value, name, problems), name, problems)


def problem_of(job: Job) -> str:
    """What is wrong with a listed job's entry in Redis (noted by `listed` / `marked`), or "" when nothing."""
    return str(job.extra.get(PROBLEM_FIELD, ""))


def other_fields(job: Job) -> dict[str, Any]:
    """Fields other writers added to a job (such as a malformed payload), without the problem note."""
    return {key: value for key, value in job.extra.items() if key != PROBLEM_FIELD}


def listed_record(job: Job, fields: dict[str, Any]) -> dict[str, Any]:
    """A listed job as a JSON record of `fields`: the fields other writers added come first, so they cannot hide
    ours, and an entry that is wrong in Redis ends with `problem` saying what is wrong."""
    record = other_fields(job)
    record.update(fields)
    if problem_of(job):
        record["problem"] = problem_of(job)
    return record
