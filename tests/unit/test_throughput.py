"""The chart counters: runs tallied in memory per job name and minute, written in one round trip, read back as
the dashboard's per-minute and per-day series."""

from __future__ import annotations

import fakeredis
import pytest

from support import SteppedClock
from workq import Job, Retry
from workq.keys import Keys
from workq.throughput import CHART_DAYS, CHART_MINUTES, MINUTES_KEPT, TOTAL, RunTally, read_charts, read_totals

NOW = 1_800_000_000 // 3600 * 3600 + 30 * 60 + 15  # 30 min 15 s into a UTC hour


@pytest.fixture
def keys() -> Keys:
    return Keys("ns")


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock(NOW)


def run(tally: RunTally, name: str, outcome: BaseException | None = None) -> None:
    def handler() -> None:
        if outcome is not None:
            raise outcome

    try:
        tally.middleware(Job(name), handler)
    except Exception as exc:
        assert exc is outcome, "the tally re-raises what the chain raised"


def test_runs_are_counted_per_outcome_and_minute_and_retries_not_at_all(
    fake_redis: fakeredis.FakeRedis, keys: Keys, clock: SteppedClock
) -> None:
    tally = RunTally(fake_redis, keys, ["a", "b"], clock)
    for _ in range(3):
        run(tally, "a")
    run(tally, "a", RuntimeError("boom"))
    run(tally, "a", Retry(5))
    clock.now = NOW - 60
    run(tally, "b")

    clock.now = NOW
    tally.flush()

    charts = read_charts(fake_redis, keys, ["a", "b"], NOW)
    assert charts.minutes["a"].processed[-1] == 3 and charts.minutes["a"].failed[-1] == 1
    assert charts.minutes["b"].processed[-2:] == [1, 0]
    assert charts.minutes[TOTAL].processed[-2:] == [1, 3]
    assert charts.days[TOTAL].processed[-1] == 0, "days come from the ack script's daily counts, not the tally"
    assert read_totals(fake_redis, keys) == {("a", "processed"): 3, ("a", "failed"): 1, ("b", "processed"): 1}
    assert 0 < fake_redis.ttl(keys.minutes("a", NOW)) <= MINUTES_KEPT


def test_a_flush_adds_to_what_other_pools_wrote_and_counts_nothing_twice(
    fake_redis: fakeredis.FakeRedis, keys: Keys, clock: SteppedClock
) -> None:
    first, second = RunTally(fake_redis, keys, ["a"], clock), RunTally(fake_redis, keys, ["a"], clock)
    run(first, "a")
    run(second, "a")
    first.flush()
    first.flush()
    second.flush()

    assert read_charts(fake_redis, keys, ["a"], NOW).minutes["a"].processed[-1] == 2


def test_a_failed_flush_keeps_the_tally_for_the_next(
    fake_redis: fakeredis.FakeRedis, keys: Keys, clock: SteppedClock
) -> None:
    tally = RunTally(fake_redis, keys, ["a"], clock)
    run(tally, "a")
    fake_redis.set(keys.minutes("a", NOW), "not a hash")
    with pytest.raises(Exception, match="WRONGTYPE"):
        tally.flush()
    fake_redis.delete(keys.minutes("a", NOW))
    tally.flush()

    assert read_charts(fake_redis, keys, ["a"], NOW).minutes["a"].processed[-1] == 1


def test_queue_latency_is_sampled_at_each_flush(
    fake_redis: fakeredis.FakeRedis, keys: Keys, clock: SteppedClock
) -> None:
    fake_redis.lpush(keys.queue("a"), Job("a", enqueued_at=NOW - 40).to_json(), Job("a", enqueued_at=NOW).to_json())
    fake_redis.lpush(keys.queue("b"), b"{not json")
    RunTally(fake_redis, keys, ["a", "b"], clock).flush()

    charts = read_charts(fake_redis, keys, ["a", "b"], NOW)
    assert charts.minutes["a"].latency[-1] == 40, "the next job to run (the oldest) has waited 40 s"
    assert charts.minutes["b"].latency[-1] == 0, "an unreadable next job says nothing"
    assert charts.minutes[TOTAL].latency[-1] == 40


def test_series_span_the_last_hour_and_week_with_utc_labels(fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    fake_redis.hset(keys.stats("a", NOW - 86400), mapping={"processed": 7, "failed": 2})

    charts = read_charts(fake_redis, keys, ["a"], NOW)

    minutes, days = charts.minutes["a"], charts.days["a"]
    assert len(minutes.labels) == CHART_MINUTES and minutes.labels[-1] == "08:30"
    assert len(days.labels) == CHART_DAYS and days.labels[-1] == "2027-01-15"
    assert (days.processed[-2], days.failed[-2]) == (7, 2)


def test_garbage_in_the_counters_reads_as_nothing(fake_redis: fakeredis.FakeRedis, keys: Keys) -> None:
    fake_redis.hset(keys.minutes("a", NOW), mapping={"processed:30": "lots", "failed:30": -5, "\xff": 1})
    fake_redis.set(keys.stats("a", NOW), "not a hash")
    fake_redis.hset(keys.totals, mapping={"processed:a": "x", "bogus": 3, "failed:": 1})

    charts = read_charts(fake_redis, keys, ["a"], NOW)

    assert charts.minutes["a"].processed[-1] == 0 and charts.minutes["a"].failed[-1] == 0
    assert charts.days["a"].processed[-1] == 0
    assert read_totals(fake_redis, keys) == {}
