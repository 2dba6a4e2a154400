"""The README's first command: the quickstart runs end to end, on the real Redis and on its fakeredis fallback."""

from __future__ import annotations

import pytest
from example_runs import run_example


@pytest.mark.parametrize("fallback", [False, True], ids=["real-redis", "fakeredis-fallback"])
def test_quickstart_runs_retries_and_buries(redis_url: str, fallback: bool) -> None:
    output = run_example("quickstart", redis_url, fallback=fallback, timeout=60)
    assert output.count("send_welcome {") == 3 and "done on attempt 2" in output
    assert "charge_card {'cents': 1999, 'order': 42} done on attempt 2" in output
    assert "resize_image id=" in output.split("Dead queue:")[1]
    assert "fails=2" in output and "ValueError: cannot decode cat.heic" in output
    assert "removed" in output
