"""The figures of a benchmark run: samples per (row, column), and the targets of issues 6 and 14 judged on their
medians."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.measure import Accounting


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    higher_is_better: bool


@dataclass(frozen=True)
class Column:
    key: str
    label: str


ROWS = [
    Row("enqueue", "enqueue, one call per job", "jobs/s", True),
    Row("enqueue_many", "bulk enqueue (`enqueue_many`)", "jobs/s", True),
    Row("enqueue_round_trips", "round trips per `enqueue`", "", False),
    Row("processing", "processing, 1 process, 10 threads", "jobs/s", True),
    Row("processing_2", "processing, `--processes 2`", "jobs/s", True),
    Row("processing_2_pinned", "processing, `--processes 2 --pin-cpus`", "jobs/s", True),
    Row("noop_async", "processing, the same job as `async def`, 1 process, 100 in flight", "jobs/s", True),
    Row("io", "I/O-bound jobs (`await asyncio.sleep(0.05)`), 1 process, 100 in flight", "jobs/s", True),
    Row("io_raw", "the same I/O-bound jobs on a raw redis.asyncio loop, 3 round trips each", "jobs/s", True),
    Row("ceiling_1", "ceiling loop, 1 thread", "jobs/s", True),
    Row("ceiling_10", "ceiling loop, 10 threads", "jobs/s", True),
    Row("worker_cpu", "worker CPU per job (processing)", "µs", False),
    Row("redis_cpu", "Redis CPU per job (processing)", "µs", False),
    Row("latency_p50", "latency enqueue → start, p50", "ms", False),
    Row("latency_p99", "latency enqueue → start, p99", "ms", False),
    Row("idle_cpu", "idle worker CPU", "% of a core", False),
    Row("rss_start", "worker RSS at start", "MB", False),
    Row("rss_warm", "worker RSS after the first 10% of jobs", "MB", False),
    Row("rss_end", "worker RSS at the end", "MB", False),
]
ROW_BY_KEY = {row.key: row for row in ROWS}

WORKQ = "workq"
PARSER_VARIANT = "workq-parser"
CEILING = "ceiling"
THREADS_IO = "workq-threads"
"""Column of the I/O-bound job run by a sync handler on as many threads as async runs are in flight."""
COLUMNS = [
    Column(WORKQ, "workq"),
    Column(PARSER_VARIANT, "workq, other parser"),
    Column("rq-simple", "RQ SimpleWorker"),
    Column("rq-fork", "RQ Worker (fork)"),
    Column("dramatiq", "Dramatiq"),
    Column(THREADS_IO, "workq, sync def on 100 threads"),
    Column("arq", "arq"),
    Column("arq-tuned", "arq (poll_delay=0.01)"),
    Column("saq", "saq"),
    Column("saq-tuned", "saq (ttl=-1)"),
    Column("huey", "Huey (1 thread, its default)"),
    Column("huey-tuned", "Huey (-w 10)"),
    Column(CEILING, "ceiling (raw redis-py)"),
]
PEERS = ["rq-simple", "rq-fork", "dramatiq", "arq", "arq-tuned", "saq", "saq-tuned", "huey", "huey-tuned"]
COMPARED = [PARSER_VARIANT, *PEERS, THREADS_IO, CEILING]
"""The columns workq's figures are divided by in the ratios table."""
CEILING_VARIANTS = {"ceiling_1": "ceiling-1", "ceiling_10": "ceiling-10"}
"""Row of each ceiling loop → the key its samples are stored under."""


@dataclass(frozen=True)
class Figure:
    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)


@dataclass
class Results:
    """Everything one `benchmarks.run` measured, plus why a cell stayed empty."""

    samples: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    accounting: dict[tuple[str, str], list[Accounting]] = field(default_factory=dict)
    notes: dict[tuple[str, str], str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    """Column labels known only at run time (which parser the workq variant has)."""
    profile: str = ""

    def label(self, column: Column) -> str:
        return self.labels.get(column.key, column.label)

    def add(self, row: str, column: str, value: float, accounting: Accounting | None = None) -> None:
        self.samples.setdefault((row, column), []).append(value)
        if accounting is not None:
            self.accounting.setdefault((row, column), []).append(accounting)

    def note(self, row: str, column: str, text: str) -> None:
        self.notes[(row, column)] = text

    def figure(self, row: str, column: str) -> Figure | None:
        if column == CEILING and row in CEILING_VARIANTS:
            return self.figure("processing", CEILING_VARIANTS[row])
        if column == CEILING and row in ("processing", "worker_cpu", "redis_cpu"):
            variant = self.ceiling_variant()
            return None if variant is None else self.figure(row, variant)
        values = self.samples.get((row, column))
        return Figure(tuple(values)) if values else None

    def ceiling_variant(self) -> str | None:
        """The ceiling is the faster (by median) of the 1-thread and the 10-thread loop."""
        found = [
            (figure.median, key) for key in CEILING_VARIANTS.values() if (figure := self.figure("processing", key))
        ]
        return max(found)[1] if found else None

    def has_column(self, column: str) -> bool:
        keys = {CEILING, *CEILING_VARIANTS.values()} if column == CEILING else {column}
        return any(key[1] in keys for key in self.samples)

    def ratio(self, row: str, column: str, over: str = WORKQ) -> float | None:
        """Median of `over` divided by the median of `column`, for one row."""
        mine, theirs = self.figure(row, over), self.figure(row, column)
        if mine is None or theirs is None or theirs.median == 0:
            return None
        return mine.median / theirs.median


@dataclass(frozen=True)
class Target:
    """One of issue 6's targets: the figure it judges (text) and whether the median meets it (None: not measured)."""

    text: str
    judge: Callable[[Results], tuple[str, bool | None]]


def _ratio_target(
    row: str, column: str, at_least: float = 0.0, unit: str = "×", at_most: float = float("inf")
) -> Callable[[Results], tuple[str, bool | None]]:
    def judge(results: Results) -> tuple[str, bool | None]:
        ratio = results.ratio(row, column)
        if ratio is None:
            return "not measured", None
        shown = f"{100 * ratio:.0f}%" if unit == "%" else f"{ratio:.2f}×"
        return shown, at_least <= ratio <= at_most

    return judge


def _value_target(
    row: str, check: Callable[[float], bool], unit: str, digits: int = 1
) -> Callable[[Results], tuple[str, bool | None]]:
    def judge(results: Results) -> tuple[str, bool | None]:
        figure = results.figure(row, WORKQ)
        if figure is None:
            return results.notes.get((row, WORKQ), "not measured"), None
        return f"{figure.median:,.{digits}f} {unit}".strip(), check(figure.median)

    return judge


def _rows_target(row: str, over_row: str, at_least: float) -> Callable[[Results], tuple[str, bool | None]]:
    """workq's median in `row` over its median in `over_row` (two figures of workq's own)."""

    def judge(results: Results) -> tuple[str, bool | None]:
        mine, other = results.figure(row, WORKQ), results.figure(over_row, WORKQ)
        if mine is None or other is None or other.median == 0:
            return "not measured", None
        ratio = mine.median / other.median
        return f"{ratio:.2f}× ({mine.median:,.0f} vs {other.median:,.0f} jobs/s)", ratio >= at_least

    return judge


def _raw_io_loop_share(results: Results) -> tuple[str, bool | None]:
    """workq's I/O-bound median over the raw redis.asyncio loop's, measured in the same run: what a busy machine
    leaves reachable, when it leaves less than the theoretical 2,000 jobs/s to anyone."""
    mine, raw = results.figure("io", WORKQ), results.figure("io_raw", CEILING)
    if mine is None or raw is None or raw.median == 0:
        return "not measured", None
    ratio = mine.median / raw.median
    return f"{100 * ratio:.0f}% ({mine.median:,.0f} vs {raw.median:,.0f} jobs/s)", ratio >= 0.9


def _memory_flat(results: Results) -> tuple[str, bool | None]:
    warm, end = results.figure("rss_warm", WORKQ), results.figure("rss_end", WORKQ)
    start = results.figure("rss_start", WORKQ)
    if warm is None or end is None or start is None:
        return "not measured", None
    growth = end.median / warm.median - 1
    text = f"{start.median:.1f} → {warm.median:.1f} → {end.median:.1f} MB ({100 * growth:+.1f}% over the last 90%)"
    return text, growth <= 0.05


TARGETS = [
    Target("processing ≥ 2× Dramatiq", _ratio_target("processing", "dramatiq", 2.0)),
    Target("processing ≥ 5× RQ SimpleWorker", _ratio_target("processing", "rq-simple", 5.0)),
    Target("processing ≥ 50% of the ceiling", _ratio_target("processing", CEILING, 0.5, "%")),
    Target("`enqueue` in one round trip", _value_target("enqueue_round_trips", lambda v: v <= 1.0, "", 2)),
    Target("`enqueue` ≥ 80% of a raw LPUSH loop", _ratio_target("enqueue", CEILING, 0.8, "%")),
    Target("`enqueue_many` ≥ 50,000 jobs/s", _value_target("enqueue_many", lambda v: v >= 50_000, "jobs/s", 0)),
    Target("latency p50 ≤ 10 ms (idle pool)", _value_target("latency_p50", lambda v: v <= 10, "ms", 2)),
    Target("latency p99 ≤ 50 ms (idle pool)", _value_target("latency_p99", lambda v: v <= 50, "ms", 2)),
    Target("idle worker < 2% of a core", _value_target("idle_cpu", lambda v: v < 2, "%", 2)),
    Target("worker memory flat (≤ 5% growth after the first 10% of jobs)", _memory_flat),
    Target("issue 14: I/O-bound ≥ 90% of the 2,000 jobs/s ceiling", _ratio_target("io", CEILING, 0.9, "%")),
    Target("issue 14, context: I/O-bound ≥ 90% of the raw redis.asyncio loop, same run", _raw_io_loop_share),
    Target("issue 14: I/O-bound ahead of arq (same in-flight limit)", _ratio_target("io", "arq", 1.0)),
    Target("issue 14: I/O-bound ahead of saq (same in-flight limit)", _ratio_target("io", "saq", 1.0)),
    Target("issue 14: async no-op ≥ workq's sync no-op", _rows_target("noop_async", "processing", 1.0)),
    Target("issue 16: Redis CPU per job ≤ Dramatiq's", _ratio_target("redis_cpu", "dramatiq", at_most=1.0)),
    Target("issue 16: `--processes 2` ≥ 1.8× one process", _rows_target("processing_2", "processing", 1.8)),
    Target(
        "issue 16, context: `--processes 2 --pin-cpus` ≥ 1.8× one process",
        _rows_target("processing_2_pinned", "processing", 1.8),
    ),
    Target("issue 16: latency p50 ≤ 1 ms (idle pool)", _value_target("latency_p50", lambda v: v <= 1, "ms", 2)),
    Target("issue 16: latency p99 ≤ 5 ms (idle pool)", _value_target("latency_p99", lambda v: v <= 5, "ms", 2)),
    Target("issue 16: idle worker < 1% of a core", _value_target("idle_cpu", lambda v: v < 1, "%", 2)),
    Target("issue 16: `enqueue` ≥ 90% of a raw LPUSH loop", _ratio_target("enqueue", CEILING, 0.9, "%")),
    Target("issue 16: `enqueue_many` ≥ 50% of a raw pipeline", _ratio_target("enqueue_many", CEILING, 0.5, "%")),
]
