"""`python signalled_supervisor.py worker …`: `workq worker …` whose supervisor sends itself SIGTERM right after it
creates child number $WORKQ_TEST_SIGNAL_AT_SPAWN, before it has recorded that child — the moment a stop signal used
to miss a respawned child. Every child's pid is appended to $WORKQ_TEST_PIDS_FILE."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

from workq.cli import main

SIGNAL_AT_SPAWN = int(os.environ["WORKQ_TEST_SIGNAL_AT_SPAWN"])
PIDS_FILE = os.environ["WORKQ_TEST_PIDS_FILE"]


class SignalledPopen(subprocess.Popen):  # type: ignore[type-arg]
    spawned = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        with open(PIDS_FILE, "a") as pids:
            pids.write(f"{self.pid}\n")
        SignalledPopen.spawned += 1
        if SignalledPopen.spawned == SIGNAL_AT_SPAWN:
            os.kill(os.getpid(), signal.SIGTERM)  # its handler runs before this constructor returns


subprocess.Popen = SignalledPopen  # type: ignore[misc]
sys.exit(main(sys.argv[1:]))
