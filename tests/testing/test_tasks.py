"""Typed tasks (`@pool.task`) under the harness: run by drain and eagerly, args bound by name; args that do not fit
go dead at once (drain) or raise `ArgsMismatch` at the enqueue (eager)."""

from __future__ import annotations

import pytest

from testing.conftest import START, UNREACHABLE
from workq import ArgsMismatch, Enqueuer, WorkerPool
from workq.testing import TestHarness


def test_typed_tasks_run_by_drain_with_their_args_bound_and_misfits_dead(pool: WorkerPool) -> None:
    totals: list[int] = []

    @pool.task(max_fails=4)
    def add(a: int, b: int = 2) -> None:
        totals.append(a + b)

    app_enqueuer = Enqueuer(pool.namespace, UNREACHABLE)
    with TestHarness(pool, app_enqueuer, start=START) as h:
        add.enqueue(1)
        add.using(app_enqueuer).enqueue(a=5, b=5)
        scheduled = add.enqueue_in(60, 10)
        h.enqueuer.enqueue("add", {"a": "x"})  # what an untyped producer could send
        result = h.drain()
        assert totals == [3, 10]
        [misfit] = result.dead
        assert misfit.fails == 1 and "argument 'a' should be int, got str 'x'" in misfit.last_err
        assert h.retrying() == []  # retrying cannot fix args: dead at once, whatever max_fails
        h.advance(60)
        assert [job.id for job in h.drain().processed] == [scheduled.id]
    assert totals == [3, 10, 12]


def test_an_eager_typed_task_runs_at_enqueue_and_a_misfit_raises_there(pool: WorkerPool) -> None:
    seen: list[str] = []

    @pool.task()
    def greet(name: str, loud: bool = False) -> None:
        seen.append(name.upper() if loud else name)

    with TestHarness(pool, eager=True, start=START) as h:
        greet.enqueue("ada", loud=True)
        assert seen == ["ADA"]
        with pytest.raises(ArgsMismatch, match="argument 'loud' should be bool"):
            h.enqueuer.enqueue("greet", {"name": "bob", "loud": "yes"})
        assert [job.name for job in h.dead()] == ["greet"]
