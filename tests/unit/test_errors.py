"""The exception hierarchy and Retry's delay."""

from __future__ import annotations

import math

import pytest

import workq
from workq.errors import ArgError, ConnectionFailed, MalformedJob, NotDeleted, NotRetried, Retry, WorkqError


@pytest.mark.parametrize("error", [ConnectionFailed, MalformedJob, ArgError, NotDeleted, NotRetried])
def test_every_workq_error_derives_from_workq_error(error: type[Exception]) -> None:
    assert issubclass(error, WorkqError)


def test_bad_data_errors_are_value_errors_too() -> None:
    assert issubclass(MalformedJob, ValueError)
    assert issubclass(ArgError, ValueError)


def test_errors_are_exported_from_the_package() -> None:
    for name in ("WorkqError", "ConnectionFailed", "MalformedJob", "ArgError", "NotDeleted", "NotRetried", "Retry"):
        assert hasattr(workq, name)


def test_retry_is_not_a_failure_error() -> None:
    assert not issubclass(Retry, WorkqError)


def test_retry_keeps_its_delay() -> None:
    assert Retry(in_seconds=30).in_seconds == 30
    assert Retry().in_seconds == 0


def test_retry_refuses_a_negative_delay() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        Retry(in_seconds=-1)


@pytest.mark.parametrize("delay", [math.nan, math.inf])
def test_retry_refuses_a_non_finite_delay(delay: float) -> None:
    with pytest.raises(ValueError):
        Retry(in_seconds=delay)
