"""`workq queues | workers | scheduled | retry | dead` and the dead-queue repairs, run as users run them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from cli.command import workq
from web.sample_jobs import BadEntries, place_bad_entries

from support import wait_until
from workq import Enqueuer, Job, WorkerPool


@pytest.fixture
def filled(namespace: str, redis_url: str, redis_client: redis.Redis) -> dict[str, Job]:
    """One job in every state: queued, scheduled, retrying and dead."""
    enqueuer = Enqueuer(namespace, redis_url)
    now = int(time.time())
    retrying = Job(name="email", enqueued_at=now, args={"to": "r@x.y"}, fails=1, last_err="Timeout", failed_at=now)
    dead = Job(name="email", enqueued_at=now, args={"to": "d@x.y"}, fails=4, last_err="SMTP 550", failed_at=now)
    redis_client.zadd(f"{namespace}:retry", {retrying.to_json(): now + 60})
    redis_client.zadd(f"{namespace}:dead", {dead.to_json(): now})
    return {
        "queued": enqueuer.enqueue("email", {"to": "q@x.y"}),
        "scheduled": enqueuer.enqueue_in("report", 3600, {"day": "monday"}),
        "retry": retrying,
        "dead": dead,
    }


def test_queues_table_and_json(filled: dict[str, Job], common: list[str]) -> None:
    table = workq("queues", *common)
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["JOB", "QUEUED", "LATENCY"]
    assert [row.split()[:2] for row in rows] == [["email", "1"], ["report", "0"]]
    as_json = json.loads(workq("queues", "--json", *common).stdout)
    assert [(row["job_name"], row["count"], row["paused"]) for row in as_json] == [
        ("email", 1, False),
        ("report", 0, False),
    ]


@pytest.mark.parametrize(
    ("command", "state", "score_field"),
    [
        ("scheduled", "scheduled", "run_at"),
        ("retry", "retry", "retry_at"),
        ("dead", "dead", "died_at"),
    ],
)
def test_sorted_set_views_list_their_jobs(
    filled: dict[str, Job], common: list[str], command: str, state: str, score_field: str
) -> None:
    table = workq(command, *common)
    assert table.returncode == 0, table.stderr
    assert filled[state].id in table.stdout and "page 1 of 1; 1 in all" in table.stdout
    listing = json.loads(workq(command, "--json", *common).stdout)
    assert listing["total"] == 1 and listing["page"] == 1
    [job] = listing["jobs"]
    assert job["id"] == filled[state].id and job["args"] == filled[state].args and isinstance(job[score_field], int)


def test_dead_repairs_one_then_all(
    filled: dict[str, Job], common: list[str], namespace: str, redis_client: redis.Redis
) -> None:
    dead = json.loads(workq("dead", "--json", *common).stdout)["jobs"][0]
    retried = workq("retry-dead", str(dead["died_at"]), dead["id"], *common)
    assert retried.returncode == 0 and f"requeued dead job {dead['id']}" in retried.stdout
    assert redis_client.llen(f"{namespace}:jobs:email") == 2
    again = workq("retry-dead", str(dead["died_at"]), dead["id"], *common)
    assert again.returncode == 1 and again.stderr.startswith("workq: ") and again.stderr.count("\n") == 1
    assert workq("delete-dead", "--all", *common).stdout.strip() == "deleted 0 dead job(s)"
    assert workq("retry-dead", *common).returncode == 2, "neither --all nor DIED_AT JOB_ID"
    assert workq("delete-dead", "--all", "1", "x", *common).returncode == 2


@pytest.fixture
def running_pool(namespace: str, redis_url: str) -> Iterator[tuple[WorkerPool, threading.Event]]:
    release = threading.Event()
    pool = WorkerPool(namespace, redis_url, concurrency=2, heartbeat_interval=0.2)

    @pool.job("email")
    def email(job: Job) -> None:
        job.checkin("halfway there")
        release.wait(120)  # busy until the fixture's teardown releases it, however slow the CLI calls are

    pool.start()
    yield pool, release
    release.set()
    pool.stop()


def test_workers_shows_live_pools_and_busy_workers(
    running_pool: tuple[WorkerPool, threading.Event], filled: dict[str, Job], common: list[str]
) -> None:
    pool, _ = running_pool

    def snapshot() -> dict[str, list[dict[str, object]]]:
        return dict(json.loads(workq("workers", "--json", *common).stdout))

    busy = wait_until(lambda: snapshot()["busy_workers"], what="the queued job to show as running")
    [pool_record] = snapshot()["worker_pools"]
    assert pool_record["worker_pool_id"] == pool.pool_id and pool_record["concurrency"] == 2
    assert busy[0]["job_id"] == filled["queued"].id
    wait_until(lambda: snapshot()["busy_workers"][0]["checkin"] == "halfway there", what="the checkin")
    table = workq("workers", *common).stdout
    assert pool.pool_id in table and filled["queued"].id in table and "halfway there" in table


# --- bad entries: each marked with its problem, never a traceback ----------------------------------------------


@pytest.fixture
def bad(redis_client: redis.Redis, namespace: str) -> BadEntries:
    return place_bad_entries(redis_client, namespace)


@pytest.mark.parametrize("command", ["scheduled", "retry", "dead"])
def test_job_listings_mark_each_bad_entry_and_list_the_good_one(
    bad: BadEntries, common: list[str], command: str
) -> None:
    table = workq(command, *common)
    assert table.returncode == 0 and table.stderr == "", table.stderr
    header, *rows = table.stdout.split("\n\n")[0].splitlines()
    assert header.split()[-1] == "PROBLEM"
    by_id = {job_id: row for row in rows for job_id in [*bad.bad_jobs, bad.good.id] if job_id in row}
    assert "PROBLEM" not in by_id[bad.good.id] and "not a time" not in by_id[bad.good.id]
    for job_id, words in bad.bad_jobs.items():
        assert words in by_id[job_id], job_id
    listing = json.loads(workq(command, "--json", *common).stdout)
    records = {record["id"]: record for record in listing["jobs"]}
    assert "problem" not in records[bad.good.id]
    assert all(words in records[job_id]["problem"] for job_id, words in bad.bad_jobs.items())


def test_each_bad_dead_entry_is_deleted_by_the_died_at_its_listing_shows(bad: BadEntries, common: list[str]) -> None:
    """Before: `delete-dead 0 inf-score` (±inf is listed as 0) answered "no job inf-score at 0"."""
    for record in json.loads(workq("dead", "--json", *common).stdout)["jobs"]:
        if record["id"] in bad.bad_jobs:
            deleted = workq("delete-dead", str(record["died_at"]), record["id"], *common)
            assert deleted.returncode == 0, deleted.stderr
    assert [record["id"] for record in json.loads(workq("dead", "--json", *common).stdout)["jobs"]] == [bad.good.id]


def test_queues_and_workers_mark_inf_counters_and_heartbeats(bad: BadEntries, common: list[str]) -> None:
    queues = workq("queues", *common)
    assert queues.returncode == 0 and queues.stderr == ""
    [inf_row] = [row for row in queues.stdout.splitlines() if row.startswith("inf_stats")]
    assert "processed is 'inf'" in inf_row and "failed is '-3'" in inf_row
    as_json = {row["job_name"]: row for row in json.loads(workq("queues", "--json", *common).stdout)}
    assert as_json["email"]["problem"] == "" and as_json["email"]["count"] == 1
    workers = workq("workers", *common)
    assert workers.returncode == 0 and workers.stderr == ""
    assert "heartbeat_at is 'inf'" in workers.stdout and "started_at is 'inf'" in workers.stdout
    snapshot = json.loads(workq("workers", "--json", *common).stdout)
    assert "concurrency is '1e400'" in snapshot["worker_pools"][0]["problem"]
