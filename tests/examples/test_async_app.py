"""The asyncio example runs end to end: the app's concurrent requests enqueue through AsyncEnqueuer (a unique
upload once), the pool runs the async and the sync task — on the real Redis and on the fakeredis fallback."""

from __future__ import annotations

import pytest
from example_runs import run_example


@pytest.mark.parametrize("fallback", [False, True], ids=["real-redis", "fakeredis-fallback"])
def test_the_async_example_enqueues_from_the_app_and_runs_both_kinds_of_task(redis_url: str, fallback: bool) -> None:
    output = run_example("async_app", redis_url, fallback=fallback, timeout=120)
    assert output.count("'status': 'queued', 'job_id'") == 5
    assert output.count("'already queued'") == 1
    assert all(f"welcome mail to User {n} <user{n}@example.com>" in output for n in range(5))
    assert output.count("thumbnail of cat.png at 128 px") == 1
    assert "removed" in output
