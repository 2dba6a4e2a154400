"""A record of the jobs handlers ran, appended from worker threads and read by the test thread."""

from __future__ import annotations

import copy
import threading
from collections import Counter

from support import wait_until
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
        """The jobs run so far, once at least `count` have run; fails the test after `timeout` seconds."""
        wait_until(lambda: len(self) >= count, timeout, what=f"{count} job(s) to run (ran {len(self)})")
        return self.jobs
