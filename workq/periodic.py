"""Cron enqueuing: every pool writes the coming fire times into the scheduled set; each is added exactly once."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from workq.clock import Clock, ClockLike, as_clock
from workq.connection import RedisClient
from workq.job import Job, check_job_name
from workq.keys import Keys
from workq.scripts import Scripts

if TYPE_CHECKING:
    from croniter import croniter

logger = logging.getLogger("workq")

LOOKAHEAD = 240.0
"""Seconds of fire times each pass adds (gocraft/work: 4 minutes)."""

INTERVAL = 120.0
"""Seconds between passes, so the scheduled set always holds the next two minutes or more."""


@dataclass(frozen=True)
class CronSchedule:
    """`job_name` enqueued at every fire time of `spec`, evaluated in `timezone` (an IANA name such as
    "Europe/Paris"; None: UTC), never in the host's zone, so every host agrees.

    Specs: 6 fields with seconds first (gocraft/work), 5 standard fields, or a descriptor such as `@hourly`.
    gocraft/work evaluates specs in its host's local time: give a Go host's zone here for the same fire times.
    """

    spec: str
    job_name: str
    timezone: str | None = None

    def __post_init__(self) -> None:
        check_job_name(self.job_name)
        check_cron_spec(self.spec)
        zone_of(self.timezone)

    @property
    def high_water_field(self) -> str:
        return schedule_field(self.job_name, self.spec)

    def fire_times(self, after: float, until: float) -> list[int]:
        """Fire times t with after < t <= until, in order."""
        times: list[int] = []
        schedule = self._from(after)
        while (fire_at := schedule.get_next(float)) <= until:
            times.append(math.floor(fire_at))
        return times

    def next_fire_times(self, after: float, count: int) -> list[int]:
        """The next `count` fire times after `after`."""
        schedule = self._from(after)
        return [math.floor(schedule.get_next(float)) for _ in range(count)]

    def _from(self, after: float) -> croniter:
        zone = zone_of(self.timezone)
        return _parse(self.spec, after if zone is None else datetime.fromtimestamp(after, zone))

    def job_at(self, fire_at: int) -> Job:
        """The tick's job, byte-identical in every pool and language so the scheduled set deduplicates it."""
        return Job(
            name=self.job_name,
            id=f"periodic:{self.job_name}:{self.spec}:{fire_at}",
            enqueued_at=fire_at,
            args_null=True,
        )


def schedule_field(job_name: str, spec: str) -> str:
    """How a schedule is named in the high-water and last-run hashes: a job name holds no `:`."""
    return f"{job_name}:{spec}"


def check_cron_spec(spec: str) -> None:
    """Raise `ValueError` (or `TypeError`) saying what is wrong with a cron spec."""
    _parse(spec, 0.0)


def zone_of(timezone: str | None) -> ZoneInfo | None:
    """The zone named `timezone`; `ValueError` for an unknown name."""
    if timezone is None:
        return None
    if not isinstance(timezone, str):
        raise TypeError(f"timezone is an IANA zone name such as 'Europe/Paris', got {type(timezone).__name__}")
    try:
        return ZoneInfo(timezone)
    except (ValueError, ZoneInfoNotFoundError):
        raise ValueError(f"unknown timezone {timezone!r}: use an IANA zone name such as 'Europe/Paris'") from None


def _parse(spec: str, start: float | datetime) -> croniter:
    if not isinstance(spec, str):
        raise TypeError(f"a cron spec is a string, got {type(spec).__name__}")
    fields = spec.split()
    descriptor = len(fields) == 1 and spec.strip().startswith("@")
    if not descriptor and len(fields) not in (5, 6):
        raise ValueError(
            f"invalid cron spec {spec!r}: expected 6 fields (seconds first), 5 fields, or a descriptor like @hourly"
        )
    # Imported here: croniter's import costs ~10 ms and a subprocess (platform.architecture), paid by every
    # `workq` command and worker process otherwise, though only cron schedules need it.
    from croniter import croniter  # noqa: PLC0415

    try:
        return croniter(spec, start, second_at_beginning=len(fields) == 6)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"invalid cron spec {spec!r}: {exc}") from None


class PeriodicEnqueuer:
    """Adds the next `LOOKAHEAD` seconds of fire times of every schedule, atomically, in one script call.

    The window starts at Redis's clock, not this host's: a host minutes ahead would otherwise raise the high-water
    mark past ticks that no pool had added yet, and those ticks would be lost."""

    def __init__(
        self,
        client: RedisClient,
        keys: Keys,
        scripts: Scripts,
        schedules: Sequence[CronSchedule],
        clock: ClockLike = None,
    ) -> None:
        self._client = client
        self._keys = keys
        self._scripts = scripts
        self._schedules = list(schedules)
        self._clock: Clock = as_clock(clock)

    def next_fire_after(self, after: float) -> float | None:
        """The first fire time of any schedule after `after` (None without schedules)."""
        return min((_parse(schedule.spec, after).get_next(float) for schedule in self._schedules), default=None)

    def enqueue_coming(self) -> int:
        now = self._clock.server_now(self._client)
        args: list[str | int] = [int(now)]
        for schedule in self._schedules:
            for fire_at in schedule.fire_times(now, now + LOOKAHEAD):
                args.extend((schedule.high_water_field, fire_at, schedule.job_at(fire_at).to_json()))
        keys = [self._keys.scheduled, self._keys.periodic_high_water, self._keys.last_periodic_enqueue]
        added = int(self._scripts.periodic_enqueue(keys=keys, args=args))
        logger.debug("periodic enqueuer added %d fire times", added)
        return added
