"""Running an example script as the README says (`python examples/<name>/run.py`), against the test's Redis or,
with `fallback`, against a URL nothing answers at, so the example falls back to its in-process fakeredis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
UNANSWERED_URL = "redis://127.0.0.1:1/0"


def run_example(name: str, redis_url: str, *, fallback: bool, timeout: float) -> str:
    """The stdout of `examples/<name>/run.py`, once it exited 0 and said which Redis it used."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name / "run.py")],
        env={**os.environ, "WORKQ_REDIS_URL": UNANSWERED_URL if fallback else redis_url},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert ("in-process fakeredis" in result.stdout) is fallback
    return result.stdout
