"""The asyncio example runs end to end: the app's concurrent requests enqueue through AsyncEnqueuer (a unique
upload once), the pool runs the async and the sync task — on the real Redis and on the fakeredis fallback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ASYNC_APP = Path(__file__).resolve().parents[2] / "examples" / "async_app" / "run.py"


@pytest.mark.parametrize("fallback", [False, True], ids=["real-redis", "fakeredis-fallback"])
def test_the_async_example_enqueues_from_the_app_and_runs_both_kinds_of_task(redis_url: str, fallback: bool) -> None:
    url = "redis://127.0.0.1:1/0" if fallback else redis_url
    result = subprocess.run(
        [sys.executable, str(ASYNC_APP)],
        env={**os.environ, "WORKQ_REDIS_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert ("in-process fakeredis" in output) is fallback
    assert output.count("'status': 'queued', 'job_id'") == 5
    assert output.count("'already queued'") == 1
    assert all(f"welcome mail to User {n} <user{n}@example.com>" in output for n in range(5))
    assert output.count("thumbnail of cat.png at 128 px") == 1
    assert "removed" in output
