"""Pools for the testing kit's own tests: each on a Redis URL nothing answers, so a command that escaped the
harness fails loudly instead of reaching a real server."""

from __future__ import annotations

import pytest

from workq import WorkerPool

UNREACHABLE = "redis://127.0.0.1:1/0"
START = 1_700_000_040.0
"""2023-11-14 22:14:00 UTC: a whole minute, so cron counts are exact."""


@pytest.fixture
def pool(namespace: str) -> WorkerPool:
    return WorkerPool(namespace, UNREACHABLE, concurrency=3)
