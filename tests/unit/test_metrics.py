"""The supervisor's metrics (`children_registry`) over its children's sample files: every scrape succeeds and serves
what can be read, whatever state a child's file is in (being created, garbage, gone)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import fakeredis
import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from workq.client import Client
from workq.metrics import MULTIPROCESS_DIR_ENV, children_registry

CHILD = """
from workq.job import Job
from workq.metrics import JobMetrics

metrics = JobMetrics()
for _ in range({runs}):
    with metrics.measuring(Job(name="ok", id="0")):
        pass
"""


@pytest.fixture(scope="module")
def child_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The sample files of a worker process of the supervisor that counted 3 runs of `ok` and exited (one child
    for the module: a fresh interpreter importing workq takes seconds on a loaded machine)."""
    directory = tmp_path_factory.mktemp("child")
    env = {**os.environ, MULTIPROCESS_DIR_ENV: str(directory)}
    subprocess.run([sys.executable, "-c", CHILD.format(runs=3)], env=env, check=True, timeout=60)
    return sorted(directory.glob("*.db"))


def add_child(directory: Path, child_files: list[Path], pid: int) -> None:
    """That child's files in `directory`, as if its pid had been `pid`."""
    for path in child_files:
        kind = path.name.rsplit("_", 1)[0]
        shutil.copyfile(path, directory / f"{kind}_{pid}.db")


def registry_over(directory: Path, fake_redis: fakeredis.FakeRedis, namespace: str) -> CollectorRegistry:
    return children_registry(Client(namespace, fake_redis), ["ok"], str(directory))


def processed(registry: CollectorRegistry) -> float:
    """`workq_jobs_processed_total{job_name="ok"}` as a scrape serves it (0 when absent)."""
    text = generate_latest(registry).decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "workq_jobs_processed_total" and sample.labels.get("job_name") == "ok"
    )


def test_the_children_s_runs_are_summed(
    tmp_path: Path, child_files: list[Path], fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    add_child(tmp_path, child_files, 101)
    add_child(tmp_path, child_files, 102)
    assert processed(registry_over(tmp_path, fake_redis, namespace)) == 6


def test_a_file_a_child_has_created_but_not_yet_sized_is_skipped(
    tmp_path: Path, child_files: list[Path], fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    """A child opens its new file (empty) and sizes it a moment later: a scrape in between served HTTP 500."""
    add_child(tmp_path, child_files, 101)
    (tmp_path / "counter_4242.db").touch()
    assert processed(registry_over(tmp_path, fake_redis, namespace)) == 3


def test_a_garbage_file_is_logged_and_the_others_are_served(
    tmp_path: Path,
    child_files: list[Path],
    fake_redis: fakeredis.FakeRedis,
    namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    add_child(tmp_path, child_files, 101)
    garbage = tmp_path / "counter_4243.db"
    garbage.write_bytes((4096).to_bytes(4, "little") + b"\xff" * 100)
    registry = registry_over(tmp_path, fake_redis, namespace)
    with caplog.at_level(logging.ERROR, logger="workq"):
        assert processed(registry) == 3
        assert processed(registry) == 3
    skipped = [record for record in caplog.records if "counter_4243.db" in record.getMessage()]
    assert len(skipped) == 1, "logged once a minute, not at every scrape"


def test_scrapes_never_fail_while_children_create_their_files(
    tmp_path: Path, fake_redis: fakeredis.FakeRedis, namespace: str
) -> None:
    """Scrapes in a tight loop while 200 children start: each creates its file as prometheus_client does in a
    worker process (MmapedDict, on its first sample) and counts one run. Before the fix some scrapes raised."""
    registry = registry_over(tmp_path, fake_redis, namespace)
    key = mmap_key("workq_jobs_processed", "workq_jobs_processed_total", ["job_name"], ["ok"], "Runs.")
    started = threading.Event()
    children_done = threading.Event()
    failures: list[BaseException] = []
    scrapes = 0

    def scrape_until_done() -> None:
        nonlocal scrapes
        while not children_done.is_set():
            try:
                generate_latest(registry)
            except Exception as exc:
                failures.append(exc)
            scrapes += 1
            started.set()

    scraper = threading.Thread(target=scrape_until_done)
    scraper.start()
    try:
        assert started.wait(10)
        for pid in range(200):
            child_file = MmapedDict(str(tmp_path / f"counter_{pid}.db"))
            child_file.write_value(key, 1.0, 0.0)
            child_file.close()
    finally:
        children_done.set()
        scraper.join(30)
    assert not failures, f"{len(failures)} of {scrapes} scrapes failed, the first: {failures[0]!r}"
    assert processed(registry) == 200
