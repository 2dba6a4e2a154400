"""What pools publish of their schedules and how tick ids are read."""

from __future__ import annotations

import pytest

from workq.periodic import CronSchedule
from workq.schedules import Tick, parse_tick, published_value, read_published


def test_published_schedules_read_back_with_their_zones() -> None:
    schedules = [CronSchedule("0 0,30 * * * *", "cleanup"), CronSchedule("0 9 * * *", "digest", "Europe/Paris")]
    value = published_value(schedules)
    assert value == '[["cleanup","0 0,30 * * * *"],["digest","0 9 * * *","Europe/Paris"]]'
    assert read_published(value) == [("cleanup", "0 0,30 * * * *", None), ("digest", "0 9 * * *", "Europe/Paris")]
    assert read_published(published_value([])) == []


@pytest.mark.parametrize("value", [None, b"", b"not json", b"{}", b'[["only a name"]]', b"[[1, 2]]"])
def test_a_heartbeat_that_says_nothing_readable_is_not_taken_for_no_schedules(value: bytes | None) -> None:
    assert read_published(value) is None


def test_tick_ids_name_their_schedule_and_fire_time() -> None:
    assert parse_tick("periodic:report:*/10 * * * * *:1700000000") == Tick("report", "*/10 * * * * *", 1_700_000_000)
    assert parse_tick("periodic:report:@hourly:1700000000").schedule_field == "report:@hourly"  # type: ignore[union-attr]
    for one_off in ("5f2a0c1e9b8d7a6f5e4d3c2b", "periodic:", "periodic:report:spec:soon", "periodic::spec:1"):
        assert parse_tick(one_off) is None
