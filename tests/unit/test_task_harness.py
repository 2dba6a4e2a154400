"""Typed tasks under `workq.testing.TestHarness` (no Redis): `.enqueue` and `.using(AsyncEnqueuer)` land in the
harness, `drain()` runs sync and async tasks with their args bound and files a mismatch dead at once, and eager mode
runs the task inside the enqueue call."""

from __future__ import annotations

import asyncio

import pytest

from workq import ArgsMismatch, WorkerPool
from workq.aio import AsyncEnqueuer
from workq.testing import TestHarness

UNREACHABLE = "redis://127.0.0.1:1/0"
"""Nothing listens there: everything must go to the harness."""


class App:
    """A pool with one sync and one async typed task; `ran` records what they did."""

    def __init__(self) -> None:
        self.ran: list[object] = []
        self.pool = WorkerPool("tasks", UNREACHABLE)
        ran = self.ran

        def add(a: int, b: int = 1) -> int:
            ran.append(a + b)
            return a + b

        async def shout(text: str) -> None:
            await asyncio.sleep(0)
            ran.append(text.upper())

        self.add = self.pool.task(add)
        self.shout = self.pool.task(shout)


def test_typed_tasks_enqueue_into_the_harness_and_drain_with_their_args_bound() -> None:
    app = App()
    async_enqueuer = AsyncEnqueuer("tasks", UNREACHABLE)
    with TestHarness(app.pool, async_enqueuer) as harness:
        app.add.enqueue(1, b=2)
        harness.enqueuer.enqueue("add", {"a": "one"})
        asyncio.run(app.shout.using(async_enqueuer).enqueue("hi"))
        result = harness.drain()
    assert sorted(map(str, app.ran)) == ["3", "HI"]
    assert len(result.processed) == 2
    (dead,) = result.dead
    assert dead.fails == 1 and "argument 'a' should be int, got str 'one'" in dead.last_err


def test_eager_mode_runs_a_typed_task_inside_its_enqueue() -> None:
    app = App()
    with TestHarness(app.pool, eager=True) as harness:
        app.add.enqueue(10)
        assert app.ran == [11]
        with pytest.raises(ArgsMismatch, match="missing argument 'a'"):
            harness.enqueuer.enqueue("add", {})
