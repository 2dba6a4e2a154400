"""Processed and failed jobs per minute and queue latency, kept in Redis for the dashboard's charts.

Counting inside the ack script would cost every job a write; instead each pool tallies runs in memory (a dict
increment) and a background loop writes the tally every `FLUSH_INTERVAL` seconds in one pipelined round trip,
with a sample of each of its queues' latency. A pool killed with -9 loses at most that many seconds of chart
counts; the daily counts (`stats:<name>:<day>`, written by the ack script) stay exact.

Layout (ext keys, ignored by gocraft/work): `minutes:<name>:<YYYY-MM-DDTHH>` hashes with `processed:<MM>`,
`failed:<MM>` (counts) and `latency:<MM>` (the longest sampled wait, seconds) per minute, expiring after
`MINUTES_KEPT`; `totals`, one hash of all-time `processed:<name>` / `failed:<name>` counts for `/metrics`.
Minutes are UTC on the pools' clocks, like the daily counts.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType

from workq.connection import RedisClient
from workq.errors import MalformedJob, Retry
from workq.job import Job
from workq.keys import Keys
from workq.middleware import Next

FLUSH_INTERVAL = 5.0
MINUTES_KEPT = 2 * 3600 + 600
"""Lifetime of an hour's hash: the chart shows the last 60 minutes, which span the current and the last hour."""
CHART_MINUTES = 60
CHART_DAYS = 7
OUTCOMES = ("processed", "failed")


class RunTally:
    """What this pool's runs did, per job name and minute, until the next `flush`. Thread-safe."""

    def __init__(self, client: RedisClient, keys: Keys, job_names: Sequence[str], clock: Callable[[], float]) -> None:
        self._client = client
        self._keys = keys
        self._job_names = list(job_names)
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, int]] = Counter()

    def middleware(self, job: Job, next: Next) -> None:
        """Outermost in every chain: a run that raises (not `Retry`) failed, one that returns was processed."""
        with self.counting(job):
            next()

    def counting(self, job: Job) -> _Counting:
        """`middleware` as a context manager, for sync and async chains alike (see `workq.middleware.Around`)."""
        return _Counting(self, job.name)

    def count(self, job_name: str, outcome: str) -> None:
        """One run of `job_name` that ended as `outcome` (processed or failed), in this minute."""
        minute = int(self._clock()) // 60 * 60
        with self._lock:
            self._counts[job_name, outcome, minute] += 1

    def flush(self) -> None:
        """Write the tally and a latency sample of this pool's queues; a failed write keeps the tally."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        now = self._clock()
        try:
            pipe = self._client.pipeline(transaction=False)
            for name in self._job_names:
                pipe.lindex(self._keys.queue(name), -1)
            oldest = pipe.execute()
            pipe = self._client.pipeline(transaction=False)
            for (name, outcome, minute), count in counts.items():
                key = self._keys.minutes(name, minute)
                pipe.hincrby(key, f"{outcome}:{_minute_field(minute)}", count)
                pipe.expire(key, MINUTES_KEPT)
                pipe.hincrby(self._keys.totals, f"{outcome}:{name}", count)
            for name, payload in zip(self._job_names, oldest, strict=True):
                key = self._keys.minutes(name, now)
                pipe.hset(key, f"latency:{_minute_field(now)}", _latency(payload, now))
                pipe.expire(key, MINUTES_KEPT)
            pipe.execute()
        except BaseException:
            with self._lock:
                self._counts.update(counts)
            raise


class _Counting:
    """One run being counted. A class rather than @contextmanager: entered on every run, it costs a fraction."""

    __slots__ = ("_job_name", "_tally")

    def __init__(self, tally: RunTally, job_name: str) -> None:
        self._tally = tally
        self._job_name = job_name

    def __enter__(self) -> None:
        pass

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        outcome = counted_outcome(kind)
        if outcome is not None:
            self._tally.count(self._job_name, outcome)


def counted_outcome(raised: type[BaseException] | None) -> str | None:
    """How a run that raised `raised` (None: it returned) counts: processed, failed, or not at all (`Retry` only
    reschedules; KeyboardInterrupt, SystemExit and cancellation hand the job back or stop the pool)."""
    if raised is None:
        return "processed"
    if issubclass(raised, Exception) and not issubclass(raised, Retry):
        return "failed"
    return None


def _latency(oldest: bytes | None, now: float) -> int:
    """Seconds the next job of a queue has waited (0: empty, or its bytes say nothing usable)."""
    if oldest is None:
        return 0
    try:
        enqueued_at = Job.from_json(oldest).enqueued_at
    except MalformedJob:
        return 0
    return int(max(0.0, now - enqueued_at)) if 0 < enqueued_at <= now else 0


def _minute_field(at: float) -> str:
    return time.strftime("%M", time.gmtime(at))


@dataclass(frozen=True)
class Series:
    """One chart's data: `labels[i]` is the UTC minute or day of `processed[i]`, `failed[i]`, `latency[i]`."""

    labels: list[str]
    processed: list[int]
    failed: list[int]
    latency: list[int]
    """Longest sampled wait of the queue in that minute, seconds (per-minute series only; days: empty)."""


@dataclass(frozen=True)
class Charts:
    """Per job name and in total: the last `CHART_MINUTES` minutes and the last `CHART_DAYS` days."""

    minutes: dict[str, Series]
    days: dict[str, Series]


TOTAL = ""
"""The key of the all-names series in `Charts.minutes` / `Charts.days` (job names are never empty)."""


def read_charts(client: RedisClient, keys: Keys, job_names: Iterable[str], now: float) -> Charts:
    """Two round trips: every hour hash of the last hour and every day hash of the last week, per name."""
    names = sorted(job_names)
    minutes = [(int(now) // 60 - back) * 60 for back in range(CHART_MINUTES - 1, -1, -1)]
    hours = sorted({minute // 3600 * 3600 for minute in minutes})
    days = [now - back * 86400 for back in range(CHART_DAYS - 1, -1, -1)]
    pipe = client.pipeline(transaction=False)
    for name in names:
        for hour in hours:
            pipe.hgetall(keys.minutes(name, hour))
        for day in days:
            pipe.hmget(keys.stats(name, day), list(OUTCOMES))
    replies = iter(pipe.execute(raise_on_error=False))
    minute_series, day_series = {}, {}
    for name in names:
        fields: dict[str, int] = {}
        for hour in hours:
            fields.update({f"{hour}:{key}": value for key, value in _int_fields(next(replies)).items()})
        minute_series[name] = Series(
            labels=[time.strftime("%H:%M", time.gmtime(minute)) for minute in minutes],
            processed=[fields.get(_hour_field(minute, "processed"), 0) for minute in minutes],
            failed=[fields.get(_hour_field(minute, "failed"), 0) for minute in minutes],
            latency=[fields.get(_hour_field(minute, "latency"), 0) for minute in minutes],
        )
        counted = [_counts(next(replies)) for _ in days]
        day_series[name] = Series(
            labels=[time.strftime("%Y-%m-%d", time.gmtime(day)) for day in days],
            processed=[processed for processed, _ in counted],
            failed=[failed for _, failed in counted],
            latency=[],
        )
    return Charts(_with_total(minute_series, minutes_total=True), _with_total(day_series, minutes_total=False))


def _hour_field(minute: int, outcome: str) -> str:
    return f"{minute // 3600 * 3600}:{outcome}:{_minute_field(minute)}"


def _int_fields(reply: object) -> dict[str, int]:
    """A hash's fields as ints; garbage (another writer's, a corrupt key) counts as absent."""
    if not isinstance(reply, dict):
        return {}
    fields = {}
    for key, value in reply.items():
        try:
            fields[key.decode() if isinstance(key, bytes) else str(key)] = max(0, int(value))
        except (UnicodeDecodeError, ValueError):
            continue
    return fields


def _counts(reply: object) -> tuple[int, int]:
    values = reply if isinstance(reply, list) and len(reply) == len(OUTCOMES) else [None, None]
    processed, failed = (_non_negative(value) for value in values)
    return processed, failed


def _non_negative(value: object) -> int:
    try:
        return max(0, int(value)) if isinstance(value, (bytes, str, int)) else 0
    except ValueError:
        return 0


def _with_total(series: dict[str, Series], *, minutes_total: bool) -> dict[str, Series]:
    """Adds the all-names series under `TOTAL`: counts summed, latency the longest of any queue."""
    if not series:
        return series
    first = next(iter(series.values()))
    total = Series(
        labels=first.labels,
        processed=[sum(values) for values in zip(*(s.processed for s in series.values()), strict=True)],
        failed=[sum(values) for values in zip(*(s.failed for s in series.values()), strict=True)],
        latency=[max(values) for values in zip(*(s.latency for s in series.values()), strict=True)]
        if minutes_total
        else [],
    )
    return {TOTAL: total, **series}


def read_totals(client: RedisClient, keys: Keys) -> dict[tuple[str, str], int]:
    """All-time (job name, outcome) counts written by pools' tallies."""
    totals = {}
    for field, value in _int_fields(client.hgetall(keys.totals)).items():
        outcome, _, name = field.partition(":")
        if outcome in OUTCOMES and name:
            totals[name, outcome] = value
    return totals
