"""Fixtures for the mixed-fleet tests: gofleet built against gocraft/work master and v0.5.1, and a `Fleet` on the
test's namespace."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from figures import record
from interop.fleet import Fleet
from interop.go_fleet import VERSIONS, build, go_missing


@pytest.fixture(scope="session")
def gofleet() -> dict[str, Path]:
    """version → gofleet binary; skips (saying why, also on stdout) only when the Go toolchain is missing."""
    reason = go_missing()
    if reason is not None:
        print(f"skipping the gocraft/work mixed-fleet tests: {reason}")
        pytest.skip(reason)
    started = time.monotonic()
    binaries = {version: build(version) for version in VERSIONS}
    report("build (cached after the first)", seconds=round(time.monotonic() - started, 2))
    return binaries


@pytest.fixture
def fleet(gofleet: dict[str, Path], redis_url: str, namespace: str) -> Iterator[Fleet]:
    mixed = Fleet(gofleet, redis_url, namespace)
    yield mixed
    mixed.close()


def report(test: str, **figures: object) -> None:
    """Print a line of figures, repeated in the terminal summary."""
    line = f"[interop] {test}: " + " ".join(f"{name}={value}" for name, value in figures.items())
    record("gocraft/work mixed fleet", line)
