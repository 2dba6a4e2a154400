"""The pytest plugin (entry point `pytest11`, loaded wherever workq is installed): the `workq_harness` fixture.

    def test_signup(workq_harness):
        h = workq_harness(app.pool, app.enqueuer)      # open now, closed after the test
        ...

Loading it costs every pytest run almost nothing (no redis-py, no fakeredis): the kit is imported when a test asks
for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from workq.aio import AsyncEnqueuer
    from workq.enqueuer import Enqueuer
    from workq.testing.harness import HarnessFactory, TestHarness
    from workq.worker_pool import WorkerPool


@pytest.fixture
def workq_harness() -> Iterator[HarnessFactory]:
    """Call it with your pool (and the Enqueuers your code enqueues through; `eager=True` to run jobs at enqueue):
    returns an open `TestHarness`, closed when the test ends, pass or fail."""
    from workq.testing.harness import TestHarness  # noqa: PLC0415 (only where a test asks for the fixture)

    opened: list[TestHarness] = []

    def open_harness(
        pool: WorkerPool, *enqueuers: Enqueuer | AsyncEnqueuer, eager: bool = False, start: float | None = None
    ) -> TestHarness:
        harness = TestHarness(pool, *enqueuers, eager=eager, start=start).open()
        opened.append(harness)
        return harness

    yield open_harness
    while opened:
        opened.pop().close()
