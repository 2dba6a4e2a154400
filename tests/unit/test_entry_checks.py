"""entry_checks: a value read from Redis for people to see is checked, and what is wrong with it is named beside it
(never failing the page it is on)."""

from __future__ import annotations

import math

import pytest

from workq.entry_checks import (
    LAST_EPOCH,
    PROBLEM_FIELD,
    check_page,
    checked_time,
    checked_time_field,
    listed,
    marked,
    shown_score,
    whole_number,
)
from workq.job import DeadJob, Job
from workq.job_lookup import decode_member


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 0), (b"7", 7), ("12", 12), (b"3.9", 3), (b"1e3", 1000), (b"123456789012345678901", 123456789012345678901)],
)
def test_whole_numbers_read_as_themselves(value: bytes | str | None, expected: int) -> None:
    problems: list[str] = []
    assert whole_number(value, "n", problems) == expected
    assert problems == []


@pytest.mark.parametrize("value", [b"-1", b"inf", b"nan", b"1e400", b"seven", b""])
def test_anything_else_reads_as_zero_and_is_named(value: bytes) -> None:
    problems: list[str] = []
    assert whole_number(value, "pid", problems) == 0
    assert problems == [f"pid is {value.decode()!r}, not a whole number >= 0"]


def test_a_time_outside_1970_to_9999_is_noted_and_shown_whole() -> None:
    problems: list[str] = []
    assert checked_time(1_700_000_000.9, "t", problems) == 1_700_000_000
    assert checked_time(LAST_EPOCH + 1, "t", problems) == LAST_EPOCH + 1
    assert checked_time(-5, "died_at", problems) == -5
    assert problems == [
        "t 2.53402e+11 is not a time between 1970 and 9999",
        "died_at -5 is not a time between 1970 and 9999",
    ]


def test_infinite_scores_show_as_zero() -> None:
    assert (shown_score(math.inf), shown_score(-math.inf), shown_score(12.5)) == (0, 0, 12)


def test_a_time_field_notes_both_a_bad_number_and_a_bad_time() -> None:
    problems: list[str] = []
    assert checked_time_field(b"1e30", "checkin_at", problems) == int(1e30)
    assert checked_time_field(b"x", "started_at", problems) == 0
    assert problems == [
        "checkin_at 1e+30 is not a time between 1970 and 9999",
        "started_at is 'x', not a whole number >= 0",
    ]


@pytest.mark.parametrize("page", [0, -1, 1.0, True, "1", None])
def test_a_page_is_an_int_from_1(page: object) -> None:
    with pytest.raises(ValueError, match="page must be an int >= 1"):
        check_page(page)


def test_a_good_entry_is_listed_without_a_problem() -> None:
    job = Job(name="email", enqueued_at=1_700_000_000, args={"n": 1})
    dead = listed(job.to_json().encode(), 1_700_000_100.5, DeadJob, "died_at")
    assert (dead.id, dead.died_at, dead.args) == (job.id, 1_700_000_100, {"n": 1})
    assert PROBLEM_FIELD not in dead.extra


def test_a_bad_entry_is_listed_with_everything_wrong_with_it() -> None:
    job = Job(name="email", enqueued_at=10**17, fails=-2)
    dead = listed(job.to_json().encode(), math.inf, DeadJob, "died_at")
    assert dead.died_at == 0
    assert dead.extra[PROBLEM_FIELD] == (
        "died_at inf is not a time between 1970 and 9999; t 1e+17 is not a time between 1970 and 9999; "
        "fails is negative (-2)"
    )


def test_bytes_that_are_not_a_job_are_marked_first_with_why() -> None:
    member = b"not json"
    job = marked(decode_member(member), member, ["later"])
    assert job.id.startswith("malformed-")
    assert job.extra[PROBLEM_FIELD].startswith(job.last_err) and job.extra[PROBLEM_FIELD].endswith("; later")
