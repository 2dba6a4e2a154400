"""The README's first command: the quickstart runs end to end, on the real Redis and on its fakeredis fallback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart" / "run.py"


@pytest.mark.parametrize("fallback", [False, True], ids=["real-redis", "fakeredis-fallback"])
def test_quickstart_runs_retries_and_buries(redis_url: str, fallback: bool) -> None:
    url = "redis://127.0.0.1:1/0" if fallback else redis_url
    result = subprocess.run(
        [sys.executable, str(QUICKSTART)],
        env={**os.environ, "WORKQ_REDIS_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert ("in-process fakeredis" in output) is fallback
    assert output.count("send_welcome {") == 3 and "done on attempt 2" in output
    assert "charge_card {'cents': 1999, 'order': 42} done on attempt 2" in output
    assert "resize_image id=" in output.split("Dead queue:")[1]
    assert "fails=2" in output and "ValueError: cannot decode cat.heic" in output
    assert "removed" in output
