"""`workq worker --metrics-port` (one process and `--processes 2`) and `--log-format json`, as real processes."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from redis_servers import free_port
from support import wait_until
from workq import Client, Enqueuer

APP_DIR = Path(__file__).parent
Samples = dict[tuple[str, str], float]
"""(sample name, job_name label) → value."""


class WorkerStarter(Protocol):
    """`worker(*options)` starts `workq worker metrics_app:pool` on the test's namespace, stopped at teardown."""

    def __call__(self, *options: str) -> subprocess.Popen[str]: ...


@pytest.fixture
def worker(redis_url: str, namespace: str) -> Iterator[WorkerStarter]:
    started: list[subprocess.Popen[str]] = []

    def start(*options: str) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "workq", "worker", "metrics_app:pool", "--redis-url", redis_url]
        process = subprocess.Popen(
            [*command, "--namespace", namespace, *options], cwd=APP_DIR, stderr=subprocess.PIPE, text=True
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(30)
        if process.stderr is not None:
            process.stderr.close()


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, sample.labels.get("job_name", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape_when_up(port: int) -> Samples:
    def attempt() -> Samples | None:
        try:
            return scrape(port)
        except OSError:
            return None

    samples = wait_until(attempt, timeout=20, what=f"metrics on port {port}")
    assert samples is not None
    return samples


@pytest.mark.parametrize("processes", [1, 2])
def test_metrics_count_runs_by_job_name_and_read_queues_from_redis(
    worker: WorkerStarter, redis_url: str, namespace: str, redis_client: redis.Redis, processes: int
) -> None:
    port = free_port()
    client = Client(namespace, redis_client)
    enqueuer = Enqueuer(namespace, redis_url)
    client.pause("ok")
    enqueuer.enqueue_many("ok", [{"n": n} for n in range(7)])
    worker("--metrics-port", str(port), "--processes", str(processes))
    before = scrape_when_up(port)
    assert before[("workq_queue_length", "ok")] == 7, "the queue gauge reads Redis at the scrape"
    assert before.get(("workq_jobs_processed_total", "ok"), 0) == 0

    client.unpause("ok")
    enqueuer.enqueue_many("boom", [{"n": n} for n in range(3)])
    samples = wait_until(
        lambda: (
            (found := scrape(port)).get(("workq_jobs_processed_total", "ok")) == 7
            and found.get(("workq_jobs_failed_total", "boom")) == 3
            and found
        ),
        timeout=30,
        what="7 ok runs and 3 failed runs counted",
    )
    assert samples[("workq_job_duration_seconds_count", "ok")] == 7
    assert samples[("workq_queue_length", "ok")] == 0
    assert not any(name.endswith("_total") and label not in {"ok", "boom"} for name, label in samples)


def test_json_logs_carry_the_job_and_the_pool(worker: WorkerStarter, redis_url: str, namespace: str) -> None:
    process = worker("--log-format", "json", "--processes", "2")
    Enqueuer(namespace, redis_url).enqueue("ok", {"n": 41})
    assert process.stderr is not None
    lines: list[dict[str, object]] = []
    for raw in process.stderr:
        lines.append(json.loads(raw))  # every line is one JSON object
        if lines[-1]["message"] == "handled n=41":
            break
    process.send_signal(signal.SIGTERM)
    lines += [json.loads(raw) for raw in process.stderr]
    assert process.wait(30) == 0

    handled = next(line for line in lines if line["message"] == "handled n=41")
    assert handled["logger"] == "metrics_app" and handled["level"] == "INFO"
    assert handled["job_name"] == "ok" and handled["attempt"] == 1 and len(str(handled["job_id"])) == 24
    assert handled["child"] in {"0", "1"} and len(str(handled["pool_id"])) == 24
    assert str(handled["time"]).endswith("Z")
    assert any(line["message"].startswith("supervisor:") for line in lines), "the supervisor logs JSON too"


def test_text_logs_under_processes_name_the_child_that_wrote_them(
    worker: WorkerStarter, redis_url: str, namespace: str
) -> None:
    process = worker("--processes", "2")
    Enqueuer(namespace, redis_url).enqueue("ok", {"n": 42})
    assert process.stderr is not None
    for raw in process.stderr:
        if "handled n=42" in raw:
            break
    process.send_signal(signal.SIGTERM)
    rest = process.stderr.read()
    assert process.wait(30) == 0

    assert re.search(r" INFO metrics_app: \[child [01]\] handled n=42$", raw), raw
    assert re.search(r"INFO workq: supervisor: ", rest), "the supervisor's own lines name no child"
    stopped = [line for line in rest.splitlines() if re.search(r"worker pool \w+ stopped", line)]
    assert stopped and all(re.search(r"\[child [01]\] worker pool", line) for line in stopped), stopped


def test_the_workers_own_failure_line_carries_the_failed_job(
    worker: WorkerStarter, redis_url: str, namespace: str
) -> None:
    """The line saying a job died is logged after its middleware chain returned, and still names the job."""
    process = worker("--log-format", "json")
    job = Enqueuer(namespace, redis_url).enqueue("boom")
    assert process.stderr is not None
    for raw in process.stderr:
        line = json.loads(raw)
        if "moved to the dead queue" in str(line["message"]):
            break
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0

    assert line["level"] == "ERROR" and line["logger"] == "workq"
    assert (line["job_name"], line["job_id"], line["attempt"]) == ("boom", job.id, 1)
    assert "RuntimeError: boom" in str(line["exception"])


def test_a_metrics_port_in_use_is_refused_in_one_line(worker: WorkerStarter) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = worker("--metrics-port", str(taken.getsockname()[1]))
        assert process.wait(30) == 1
    assert process.stderr is not None
    error = process.stderr.read()
    assert "cannot serve metrics on 127.0.0.1:" in error and "Traceback" not in error
