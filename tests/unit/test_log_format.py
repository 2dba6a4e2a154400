"""`--log-format json`: one JSON object per line, with the running job's fields where there is one."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading

import pytest

from workq import Job, WorkerPool
from workq.log_format import configure_logging, job_context
from workq.testing import TestHarness


@pytest.fixture
def lines(root_logging: logging.Logger) -> io.StringIO:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream, pool_id="p1", child=None)
    return stream


def logged(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_outside_a_job_has_the_pool_and_no_job(lines: io.StringIO) -> None:
    logging.getLogger("app").warning("disk %s%% full", 93)

    (line,) = logged(lines)
    assert line["message"] == "disk 93% full" and line["level"] == "WARNING" and line["logger"] == "app"
    assert line["pool_id"] == "p1" and "child" not in line and "job_id" not in line
    assert str(line["time"]).endswith("Z") and str(line["time"])[10] == "T"


def test_lines_inside_a_run_carry_the_job_only_in_its_own_thread(lines: io.StringIO) -> None:
    job = Job("email", fails=2)
    inside, other_thread_logged = threading.Event(), threading.Event()

    def elsewhere() -> None:
        inside.wait(5)
        logging.getLogger("app").info("meanwhile")
        other_thread_logged.set()

    threading.Thread(target=elsewhere).start()

    def run() -> None:
        logging.getLogger("app").info("sending")
        inside.set()
        other_thread_logged.wait(5)

    with job_context(job):
        run()
    logging.getLogger("app").info("after")

    by_message = {line["message"]: line for line in logged(lines)}
    assert (by_message["sending"]["job_name"], by_message["sending"]["job_id"]) == ("email", job.id)
    assert by_message["sending"]["attempt"] == 3
    assert "job_id" not in by_message["meanwhile"] and "job_id" not in by_message["after"]


def test_the_retry_and_dead_lines_logged_after_a_run_carry_the_attempt_that_failed(lines: io.StringIO) -> None:
    pool = WorkerPool("logs", concurrency=1)

    @pool.job("sync", max_fails=2, backoff=lambda job: 5)
    def sync(job: Job) -> None:
        raise ConnectionError("upstream down")

    with TestHarness(pool) as harness:
        job = harness.enqueuer.enqueue("sync")
        harness.drain()
        harness.advance(5)
        harness.drain()

    failures = [line for line in logged(lines) if line["logger"] == "workq" and line["level"] == "ERROR"]
    assert [(line["job_name"], line["job_id"], line["attempt"]) for line in failures] == [
        ("sync", job.id, 1),
        ("sync", job.id, 2),
    ]
    assert "retrying in 5 s" in str(failures[0]["message"])
    assert "moved to the dead queue" in str(failures[1]["message"])
    assert all("ConnectionError: upstream down" in str(line["exception"]) for line in failures)


def test_a_traceback_is_one_field_of_one_line(lines: io.StringIO) -> None:
    with job_context(Job("x")):
        try:
            raise ValueError('bad "value"\nsecond line')
        except ValueError:
            logging.getLogger("app").exception("failed")

    (line,) = logged(lines)
    assert 'ValueError: bad "value"' in str(line["exception"]) and line["job_name"] == "x"


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="text, json"):
        configure_logging("INFO", "xml")


@pytest.mark.usefixtures("root_logging")
def test_lines_go_to_stderr_as_it_is_when_each_is_logged() -> None:
    """`main()` run in-process (a test's capsys, a tool's redirect_stderr) leaves a handler on the root logger: it
    must follow stderr, not keep writing to the stream that was stderr during the call and is closed since."""
    configure_logging("INFO")
    during_the_call, afterwards = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(during_the_call):
        logging.getLogger("workq").warning("one")
    during_the_call.close()
    with contextlib.redirect_stderr(afterwards):
        logging.getLogger("workq").warning("two")
    assert afterwards.getvalue().endswith("two\n")
