"""The pytest plugin, found through its `pytest11` entry point as in a user's project: `workq_harness(pool, ...)`
opens a harness for the test and closes it at teardown, pass or fail."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

USER_TESTS = """
import pytest
from workq import Enqueuer, Job, WorkerPool

pool = WorkerPool("shop", "redis://127.0.0.1:1/0")
enqueuer = Enqueuer("shop", "redis://127.0.0.1:1/0")
original = (pool.redis, enqueuer.redis)
sent = []

@pool.job("send_receipt", max_fails=1)
def send_receipt(job: Job) -> None:
    if job.arg_str("to") == "nobody":
        raise ValueError("no address")
    sent.append(job.arg_str("to"))

def test_drain(workq_harness):
    h = workq_harness(pool, enqueuer)
    enqueuer.enqueue("send_receipt", {"to": "ada"})
    send_receipt.enqueue(to="nobody")
    result = h.drain()
    assert sent == ["ada"] and [job.last_err for job in result.dead] == ["ValueError: no address"]

def test_eager_and_a_failing_test(workq_harness):
    workq_harness(pool, enqueuer, eager=True)
    enqueuer.enqueue("send_receipt", {"to": "bob"})
    assert sent == ["ada", "bob"]
    raise AssertionError("this test fails on purpose")

def test_every_harness_was_closed_at_teardown():
    assert (pool.redis, enqueuer.redis) == original and enqueuer.on_enqueued is None
"""


def test_the_fixture_comes_from_the_entry_point_and_closes_the_harness_after_each_test(tmp_path: Path) -> None:
    (tmp_path / "test_shop.py").write_text(textwrap.dedent(USER_TESTS))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_shop.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "1 failed, 2 passed" in result.stdout, result.stdout + result.stderr
    assert "this test fails on purpose" in result.stdout
