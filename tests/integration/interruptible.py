"""Handlers that work in 10 ms steps until their time is up or their run is interrupted (cancelled, timed out), and
record what ended each run and when."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

from workq import Job


@dataclass
class RunRecord:
    job_id: str
    started: float
    ended: float = 0.0
    raised: str = ""
    completed: bool = False
    saw_cancelled: bool = False


@dataclass
class Runs:
    """What each run of a handler did, with its start and end on this host's monotonic clock."""

    records: list[RunRecord] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, job: Job) -> RunRecord:
        record = RunRecord(job.id, time.monotonic())
        with self.lock:
            self.records.append(record)
        return record

    def ended(self) -> list[RunRecord]:
        with self.lock:
            return [record for record in self.records if record.ended]

    def overlapping(self) -> list[tuple[RunRecord, RunRecord]]:
        with self.lock:
            ordered = sorted(self.records, key=lambda record: record.started)
        return [(a, b) for a, b in itertools.pairwise(ordered) if not a.ended or b.started < a.ended]


def steps_of_sleep(job: Job, runs: Runs, seconds: float) -> None:
    """`seconds` of work in 10 ms steps (each step a bytecode boundary where an interrupt lands)."""
    record = runs.start(job)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.01)
        record.completed = True
    except BaseException as exc:
        record.raised = type(exc).__name__
        raise
    finally:
        record.saw_cancelled = job.cancelled
        record.ended = time.monotonic()


class Interruptible:
    """A handler working for up to 30 s: `started` is set when its run begins, `ended` when it ends; `raised` names
    what interrupted it, `saw_cancelled` is `job.cancelled` at the end, `ended_at` the monotonic time it ended."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.ended = threading.Event()
        self.runs = Runs()

    def __call__(self, job: Job) -> None:
        self.started.set()
        try:
            steps_of_sleep(job, self.runs, 30)
        finally:
            self.ended.set()

    @property
    def raised(self) -> str:
        return self.runs.records[-1].raised

    @property
    def saw_cancelled(self) -> bool:
        return self.runs.records[-1].saw_cancelled

    @property
    def ended_at(self) -> float:
        return self.runs.records[-1].ended
