"""Fixtures of the CLI tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def common(redis_url: str, namespace: str) -> list[str]:
    """The connection options that point a `workq` command at the test's Redis and namespace."""
    return ["--redis-url", redis_url, "--namespace", namespace]
