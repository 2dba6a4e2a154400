"""Retry delays: gocraft/work's default curve and the exponential alternative."""

from __future__ import annotations

import random

import pytest

from workq.backoff import default_backoff, exponential
from workq.job import Job


def failed(fails: int) -> Job:
    return Job(name="n", fails=fails)


@pytest.mark.parametrize("fails", [1, 2, 3, 4, 5])
def test_default_backoff_stays_within_gocraft_bounds(fails: int) -> None:
    rng = random.Random(fails)
    delays = {default_backoff(failed(fails), rng) for _ in range(2000)}
    low, high = fails**4 + 15, fails**4 + 15 + 29 * (fails + 1)
    assert min(delays) == low
    assert max(delays) == high
    assert all((delay - low) % (fails + 1) == 0 for delay in delays)


def test_default_backoff_first_retry_is_16_to_74_seconds() -> None:
    rng = random.Random(1)
    delays = [default_backoff(failed(1), rng) for _ in range(500)]
    assert (min(delays), max(delays)) == (16, 74)


def test_default_backoff_is_reproducible_with_a_seed() -> None:
    first = [default_backoff(failed(3), random.Random(42)) for _ in range(3)]
    assert len(set(first)) == 1


def test_default_backoff_works_without_an_rng() -> None:
    assert 16 <= default_backoff(failed(1)) <= 74


def test_exponential_doubles_from_first() -> None:
    delay = exponential(first=5)
    assert [delay(failed(fails)) for fails in (1, 2, 3, 4)] == [5, 10, 20, 40]


def test_exponential_treats_zero_fails_as_the_first() -> None:
    assert exponential(first=5)(failed(0)) == 5


def test_exponential_honours_its_base() -> None:
    assert exponential(3.0)(failed(3)) == 9


def test_exponential_stops_at_the_cap() -> None:
    delay = exponential(first=1, cap=100)
    assert delay(failed(7)) == 64
    assert delay(failed(8)) == 100
    assert delay(failed(50)) == 100


def test_exponential_returns_ints() -> None:
    assert type(exponential(1.5)(failed(2))) is int


def test_exponential_stays_at_the_cap_for_very_many_fails() -> None:
    assert exponential(cap=3600)(failed(2000)) == 3600
