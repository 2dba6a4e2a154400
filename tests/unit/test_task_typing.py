"""`Task.enqueue*` are typed from the task function's signature: mypy --strict, run on small files, rejects every
wrong argument name, type and count (each marked line, and only those) and accepts the right calls — sync and async
tasks, the pool's enqueuer and `.using(AsyncEnqueuer)`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import workq

TASKS = """
from __future__ import annotations
from typing import Optional
from workq import Job, ScheduledJob, WorkerPool
from workq.aio import AsyncEnqueuer

pool = WorkerPool("ns", "redis://localhost:6379/0")

@pool.task
def send_email(to: str, retries: int = 3, cc: Optional[list[str]] = None) -> bool:
    return True

@pool.task(name="resize_image", max_fails=2)
async def resize(width: int, height: float) -> None:
    return None
"""

RIGHT_CALLS = """
async def web(enqueuer: AsyncEnqueuer) -> None:
    job: Job = await send_email.using(enqueuer).enqueue("a@b", cc=["c"])
    later: ScheduledJob = await resize.using(enqueuer).enqueue_in(5, width=1, height=2)
    await resize(1, 2.0)
    await resize.using(enqueuer).enqueue_unique_in_by_key(5, {"k": 1}, width=1, height=2)

job: Job = send_email.enqueue("a@b", 2, ["c"])
named: Job = send_email.enqueue(to="x", retries=1, cc=None)
later: ScheduledJob = send_email.enqueue_in(10, "x")
maybe: Job | None = send_email.enqueue_unique("x")
maybe_later: ScheduledJob | None = resize.enqueue_unique_in(1.5, 1, height=2)
by_key: Job | None = send_email.enqueue_unique_by_key({"user": 1}, "x", retries=2)
by_key_later: ScheduledJob | None = resize.enqueue_unique_in_by_key(5, {"k": 1}, 1, 2.0)
resize.enqueue(width=1, height=2.5)
sent: bool = send_email("x")
"""

WRONG_CALLS = """
async def web(enqueuer: AsyncEnqueuer) -> None:
    await send_email.using(enqueuer).enqueue(to=["a"])  # expect: Argument "to" to "enqueue" of "AsyncTaskEnqueuer"
    await resize.using(enqueuer).enqueue(1)  # expect: Missing positional argument "height"

send_email.enqueue(adress="x")  # expect: Unexpected keyword argument "adress"
send_email.enqueue(to=1)  # expect: Argument "to" to "enqueue" of "Task" has incompatible type "int"; expected "str"
send_email.enqueue()  # expect: Missing positional argument "to"
send_email.enqueue("x", 1, ["c"], 4)  # expect: Too many arguments for "enqueue"
send_email.enqueue("x", retries=True, cc=[1])  # expect: List item 0 has incompatible type "int"; expected "str"
send_email.enqueue_in("soon", "x")  # expect: Argument 1 to "enqueue_in" of "Task" has incompatible type "str"
send_email.enqueue_unique(to="x", retries="3")  # expect: Argument "retries" to "enqueue_unique"
resize.enqueue(width="1", height=2)  # expect: Argument "width" to "enqueue" of "Task" has incompatible type "str"
resize.enqueue_unique_in(5, width=1)  # expect: Missing positional argument "height" in call to "enqueue_unique_in"
result: Job = resize.using(pool.enqueuer).enqueue(1, 2.0, 3)  # expect: Too many arguments for "enqueue"
send_email.enqueue_unique_by_key("user", "x")  # expect: Argument 1 to "enqueue_unique_by_key" of "Task"
resize.enqueue_unique_in_by_key(5, {"k": 1}, width="1", height=2)  # expect: Argument "width" to "enqueue_unique_
"""


def run_mypy(tmp_path: Path, source: str) -> tuple[int, dict[int, str]]:
    """mypy --strict on `source` as a module; its exit status and its errors by line."""
    module = tmp_path / "tasks_under_test.py"
    module.write_text(source)
    completed = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), str(module)],
        capture_output=True,
        text=True,
        env={"MYPYPATH": str(Path(workq.__file__).parent.parent), "PATH": "/usr/bin:/bin"},
        timeout=600,
        check=False,
    )
    errors: dict[int, str] = {}
    for line in completed.stdout.splitlines():
        found = re.match(r".*tasks_under_test\.py:(\d+): error: (.*)", line)
        if found:
            errors.setdefault(int(found[1]), "")
            errors[int(found[1])] += found[2]
    return completed.returncode, errors


def test_mypy_rejects_each_wrong_argument_name_type_or_count(tmp_path: Path) -> None:
    source = TASKS + WRONG_CALLS
    expected = {
        number: line.split("# expect: ", 1)[1]
        for number, line in enumerate(source.splitlines(), start=1)
        if "# expect: " in line
    }
    status, errors = run_mypy(tmp_path, source)
    assert status == 1
    assert sorted(errors) == sorted(expected), f"errors on other lines than marked: {errors}"
    for number, wanted in expected.items():
        assert wanted in errors[number], f"line {number}: {errors[number]!r} lacks {wanted!r}"


def test_mypy_accepts_the_right_calls(tmp_path: Path) -> None:
    status, errors = run_mypy(tmp_path, TASKS + RIGHT_CALLS)
    assert (status, errors) == (0, {})
