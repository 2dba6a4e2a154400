"""Cron schedules as an operator sees them: the specs live pools publish in their heartbeats, their next fire times
and last runs, and how a cron tick in the scheduled set is told apart from a one-off job."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from workq.connection import RedisClient, reply_text
from workq.job import Job
from workq.keys import Keys
from workq.periodic import CronSchedule, schedule_field

logger = logging.getLogger("workq")

PUBLISHED_FIELD = "periodic_jobs"
"""ext field of a pool's heartbeat hash: JSON `[[job name, spec], …]` (`[job name, spec, zone]` for a schedule
evaluated in an IANA time zone), the schedules the pool registered.
gocraft/work reads the fields it knows and ignores this one. A pool whose hash lacks it (gocraft/work, an older
workq) did not say what it registers, so it may register anything."""

TICK_PREFIX = "periodic:"
NEXT_FIRE_TIMES = 3
"""How many coming fire times a schedule lists."""


Published = tuple[str, str, str | None]
"""(job name, spec, time zone or None for UTC)"""


def published_value(schedules: Iterable[CronSchedule]) -> str:
    """The heartbeat field a pool publishes its schedules in."""
    entries = [
        [schedule.job_name, schedule.spec, *([schedule.timezone] if schedule.timezone else [])]
        for schedule in schedules
    ]
    return json.dumps(entries, separators=(",", ":"))


def read_published(value: bytes | str | None) -> list[Published] | None:
    """The schedules a heartbeat publishes; None when it publishes nothing readable (not a workq pool that says
    what it registers)."""
    if value is None:
        return None
    try:
        entries = json.loads(value)
    except ValueError:
        return None
    if not isinstance(entries, list) or not all(
        isinstance(entry, list) and len(entry) in (2, 3) and all(isinstance(part, str) for part in entry)
        for entry in entries
    ):
        return None
    return [(entry[0], entry[1], entry[2] if len(entry) == 3 else None) for entry in entries]


def split_schedule_field(value: str) -> tuple[str, str]:
    """(job name, spec) of a `schedule_field`: a job name holds no `:`."""
    job_name, _, spec = value.partition(":")
    return job_name, spec


@dataclass(frozen=True)
class Tick:
    """What a cron tick's id (`periodic:<name>:<spec>:<epoch>`, gocraft/work's too) says about it."""

    job_name: str
    spec: str
    fire_at: int

    @property
    def schedule_field(self) -> str:
        return schedule_field(self.job_name, self.spec)


def parse_tick(job_id: str) -> Tick | None:
    """The tick a job id names, or None for a one-off job."""
    if not job_id.startswith(TICK_PREFIX):
        return None
    rest, _, epoch = job_id[len(TICK_PREFIX) :].rpartition(":")
    job_name, _, spec = rest.partition(":")
    if not job_name or not spec or not epoch.isdigit():
        return None
    return Tick(job_name, spec, int(epoch))


def is_cron_tick(job: Job) -> bool:
    return parse_tick(job.id) is not None


@dataclass(frozen=True)
class LastRun:
    """The latest tick of a schedule that a worker started: its fire time and when it started."""

    fire_at: int
    started_at: int


@dataclass(frozen=True)
class Schedule:
    """One cron schedule: which live pools register it, when it fires next and when a run of it last started."""

    job_name: str
    spec: str
    timezone: str | None
    """The IANA zone the spec is evaluated in; None: UTC (or unknown, for a schedule no live pool registers)."""
    pool_ids: list[str]
    """Live pools (in `worker_pools`) that publish it; empty for a schedule no live pool registers any more."""
    next_fire_times: list[int]
    """The coming fire times; none for a schedule no live pool registers (its remaining ticks are dropped)."""
    enqueued_until: int
    """The last fire time added to the scheduled set (0: none known)."""
    last_run: LastRun | None = None
    problem: str = field(default="")
    """What is wrong with the spec or the records of it, or ""."""

    @property
    def registered(self) -> bool:
        return bool(self.pool_ids)


def read_schedules(client: RedisClient, keys: Keys, now: float) -> list[Schedule]:
    """Every schedule a live pool publishes, plus those no live pool registers that still have ticks ahead."""
    pool_ids = sorted(reply_text(pool_id) for pool_id in client.smembers(keys.worker_pools))
    pipe = client.pipeline(transaction=False)
    for pool_id in pool_ids:
        pipe.hget(keys.worker_pool(pool_id), PUBLISHED_FIELD)
    pipe.hgetall(keys.periodic_high_water)
    pipe.hgetall(keys.periodic_last_run)
    *published, high_water, last_runs = pipe.execute()
    registered: dict[Published, list[str]] = {}
    for pool_id, value in zip(pool_ids, published, strict=True):
        for entry in read_published(value) or []:
            registered.setdefault(entry, []).append(pool_id)
    marks = _decoded(high_water)
    fields = {schedule_field(job_name, spec) for job_name, spec, _ in registered}
    for name, mark in marks.items():
        if name not in fields and _number(mark) > now:
            job_name, spec = split_schedule_field(name)
            registered[(job_name, spec, None)] = []
    runs = _decoded(last_runs)
    return [_schedule(entry, pools, marks, runs, now) for entry, pools in sorted(registered.items(), key=_by_name)]


def _by_name(item: tuple[Published, list[str]]) -> tuple[str, str, str]:
    job_name, spec, timezone = item[0]
    return job_name, spec, timezone or ""


def _schedule(
    entry: Published, pool_ids: Sequence[str], marks: Mapping[str, str], runs: Mapping[str, str], now: float
) -> Schedule:
    job_name, spec, timezone = entry
    name = schedule_field(job_name, spec)
    problems: list[str] = []
    next_fire_times: list[int] = []
    if pool_ids:
        try:
            next_fire_times = CronSchedule(spec, job_name, timezone).next_fire_times(now, NEXT_FIRE_TIMES)
        except (TypeError, ValueError) as exc:
            problems.append(str(exc))
    return Schedule(
        job_name=job_name,
        spec=spec,
        timezone=timezone,
        pool_ids=list(pool_ids),
        next_fire_times=next_fire_times,
        enqueued_until=int(_number(marks.get(name))),
        last_run=_last_run(runs.get(name), problems),
        problem="; ".join(problems),
    )


def _last_run(value: str | None, problems: list[str]) -> LastRun | None:
    if value is None:
        return None
    try:
        record = json.loads(value)
        return LastRun(int(record["fire_at"]), int(record["started_at"]))
    except (ValueError, TypeError, KeyError, OverflowError):
        problems.append(f"last run record {value[:60]!r} is not readable")
        return None


def last_run_value(fire_at: int, started_at: int) -> str:
    return json.dumps({"fire_at": fire_at, "started_at": started_at}, separators=(",", ":"))


def _decoded(replies: Mapping[bytes, bytes]) -> dict[str, str]:
    return {reply_text(name): reply_text(value) for name, value in replies.items()}


def _number(value: str | None) -> float:
    try:
        number = float(value) if value is not None else 0.0
    except ValueError:
        return 0.0
    return number if math.isfinite(number) else 0.0
