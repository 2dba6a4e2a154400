"""`workq cancel`, `workq purge NAME --yes` and `workq status [--json]`, run as users run them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cli.command import workq

from support import wait_until
from workq import Client, Enqueuer, Job

APP_DIR = Path(__file__).parent


@pytest.fixture
def enqueuer(namespace: str, redis_url: str) -> Enqueuer:
    return Enqueuer(namespace, redis_url)


def test_cancel_says_where_the_job_was_and_an_unknown_id_is_one_line(
    common: list[str], enqueuer: Enqueuer, redis_client: redis.Redis, namespace: str
) -> None:
    job = enqueuer.enqueue("email", {"to": "a"})
    done = workq("cancel", job.id, *common)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"cancelled job {job.id} (queued): removed from its queue; it will not run"
    assert redis_client.llen(f"{namespace}:jobs:email") == 0
    missing = workq("cancel", "nope", *common)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip().splitlines() == [
        f"workq: no job nope is queued, scheduled, retrying, running or dead in {namespace!r}"
    ]


def test_purge_refuses_without_yes_and_deletes_with_it(
    common: list[str], enqueuer: Enqueuer, redis_client: redis.Redis, namespace: str
) -> None:
    enqueuer.enqueue_many("email", [{"n": index} for index in range(3)])
    refused = workq("purge", "email", *common)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert redis_client.llen(f"{namespace}:jobs:email") == 3
    done = workq("purge", "email", "--yes", *common)
    assert done.returncode == 0 and done.stdout.strip() == "purged 3 queued email job(s)"
    assert redis_client.llen(f"{namespace}:jobs:email") == 0
    bad_name = workq("purge", "a b", "--yes", *common)
    assert bad_name.returncode == 2 and len(bad_name.stderr.strip().splitlines()) == 1


def test_status_as_text_and_json_and_of_an_unknown_job(
    common: list[str], enqueuer: Enqueuer, namespace: str, redis_url: str
) -> None:
    job = enqueuer.enqueue("email", {"to": "a"})
    text = workq("status", job.id, *common)
    assert text.returncode == 0, text.stderr
    assert "state:      queued" in text.stdout and f"job_id:     {job.id}" in text.stdout
    Client(namespace, redis_url).cancel(job.id)
    as_json = workq("status", job.id, "--json", *common)
    assert json.loads(as_json.stdout) == {
        "job_id": job.id,
        "job_name": "email",
        "state": "cancelled",
        "fails": 0,
        "last_err": "cancelled while queued",
        "result": None,
        "updated_at": json.loads(as_json.stdout)["updated_at"],
    }
    missing = workq("status", "nope", *common)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "no job nope" in missing.stderr


@pytest.fixture
def worker_process(common: list[str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`workq worker worker_app:pool` in a process of its own."""
    with (tmp_path / "worker.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "workq", "worker", "worker_app:pool", *common], cwd=APP_DIR, stderr=log
        )
        yield process
        process.kill()
        process.wait(10)


@pytest.mark.skipif(not hasattr(Job, "cancelled"), reason="needs the worker side of issue 13 (pools that interrupt)")
def test_cancel_stops_a_job_running_in_another_process(
    common: list[str], enqueuer: Enqueuer, redis_client: redis.Redis, namespace: str, worker_process: object
) -> None:
    job = enqueuer.enqueue("blocking", {})
    wait_until(lambda: redis_client.exists(f"{namespace}:test:started:{job.id}"), timeout=30, what="the job to start")
    done = workq("cancel", job.id, *common)
    assert done.returncode == 0 and f"cancelled job {job.id} (running)" in done.stdout, done.stderr

    def cancelled() -> dict[str, object] | None:
        status = json.loads(workq("status", job.id, "--json", *common).stdout)
        return status if status["state"] == "cancelled" else None

    status = wait_until(cancelled, timeout=20, interval=0.2, what="the job to be recorded cancelled")
    assert "cancelled" in str(status["last_err"])
    assert not redis_client.exists(f"{namespace}:test:finished:{job.id}"), "the handler was interrupted"
