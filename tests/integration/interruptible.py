"""A handler that works in 10 ms steps for up to 30 s unless its run is interrupted (cancelled, timed out), and
records what ended it and when."""

from __future__ import annotations

import threading
import time

from workq import Job


class Interruptible:
    """`started` is set when the run begins, `ended` when it ends; `raised` names what interrupted it, `saw_cancelled`
    is `job.cancelled` at the end, `ended_at` the monotonic time it ended."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.ended = threading.Event()
        self.raised = ""
        self.saw_cancelled = False
        self.ended_at = 0.0

    def __call__(self, job: Job) -> None:
        self.started.set()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                time.sleep(0.01)
        except BaseException as exc:
            self.raised = type(exc).__name__
            raise
        finally:
            self.saw_cancelled = job.cancelled
            self.ended_at = time.monotonic()
            self.ended.set()
