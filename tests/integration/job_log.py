"""A record of the jobs handlers ran, appended from worker threads and read by the test thread."""

from __future__ import annotations

import copy
import threading
from collections import Counter

from support import wait_for_count
from workq import Job


class JobLog:
    """Handlers call `record(job)`; tests read what ran, in the order it ran."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: list[Job] = []

    def record(self, job: Job) -> None:
        """Keep a copy: the worker updates the job it passed in (fails, err) once the handler has failed."""
        with self._lock:
            self._jobs.append(copy.copy(job))

    @property
    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs)

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def runs_per_id(self) -> Counter[str]:
        return Counter(job.id for job in self.jobs)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Job]:
        """The jobs run so far, once at least `count` have run; fails the test when `timeout` seconds pass without
        a new run (however long the lot takes while runs keep coming)."""
        wait_for_count(lambda: len(self), count, stalled_after=timeout, what="jobs to run")
        return self.jobs
