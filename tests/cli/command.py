"""Run the `workq` command as a user would: a fresh interpreter, its output captured."""

from __future__ import annotations

import subprocess
import sys


def workq(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workq", *argv], check=False, capture_output=True, text=True, timeout=60
    )
