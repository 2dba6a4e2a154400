"""Operating papercuts, as a user meets them at the command line: `--version`, a warning for a job name no live
pool serves, paged queues, empty views that name their namespace, cron schedules and ticks apart from one-off
jobs, and a retried job's original enqueue time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from importlib import metadata

import pytest
import redis
from cli.command import workq

from support import wait_until
from workq import Enqueuer, Job, WorkerPool
from workq.distribution import DISTRIBUTION_NAME

EVERY_10S = "*/10 * * * * *"


@pytest.fixture
def pool(namespace: str, redis_url: str, redis_client: redis.Redis) -> Iterator[WorkerPool]:
    """A live pool serving `email` and `report`, with `report` on a 10 s cron schedule (its ticks added)."""
    pool = WorkerPool(namespace, redis_url, concurrency=1)
    pool.job("email", lambda job: None)
    pool.job("report", lambda job: None)
    pool.periodically_enqueue(EVERY_10S, "report")
    pool.start()
    wait_until(lambda: redis_client.zcard(f"{namespace}:scheduled") >= 20, what="the first cron pass")
    yield pool
    pool.stop()


def test_version_is_the_installed_distributions() -> None:
    result = workq("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"workq {metadata.version(DISTRIBUTION_NAME)}"  # workq-redis, PyPI's name


def test_enqueue_of_a_name_no_live_pool_serves_warns_and_still_enqueues(
    pool: WorkerPool, common: list[str], namespace: str, redis_client: redis.Redis
) -> None:
    typo = workq("enqueue", "emial", *common)
    assert typo.returncode == 0, typo.stderr
    assert "warning: no live worker pool" in typo.stderr and "'emial'" in typo.stderr
    assert "live pools serve: email, report" in typo.stderr
    assert redis_client.llen(f"{namespace}:jobs:emial") == 1, "the job is enqueued all the same"
    served = workq("enqueue", "email", *common)
    assert served.returncode == 0 and served.stderr == ""


def test_enqueue_with_no_pool_at_all_says_so(common: list[str], namespace: str) -> None:
    result = workq("enqueue", "email", *common)
    assert result.returncode == 0
    assert f"no live worker pool in namespace '{namespace}'" in result.stderr
    assert "no worker pool is running there" in result.stderr


def test_queues_shows_which_names_no_live_pool_serves(pool: WorkerPool, common: list[str], redis_url: str) -> None:
    Enqueuer(common[3], redis_url).enqueue("emial")
    rows = {row["job_name"]: row for row in json.loads(workq("queues", "--json", *common).stdout)}
    assert (rows["email"]["pools"], rows["report"]["pools"], rows["emial"]["pools"]) == (1, 1, 0)
    table = workq("queues", *common).stdout
    [typo_row] = [line for line in table.splitlines() if line.startswith("emial")]
    assert "none: no live pool serves it" in typo_row


def test_queues_pages_like_the_other_views(common: list[str], namespace: str, redis_url: str) -> None:
    enqueuer = Enqueuer(namespace, redis_url)
    names = [f"job{index:02d}" for index in range(25)]
    for name in names:
        enqueuer.enqueue(name)
    first = json.loads(workq("queues", "--json", *common).stdout)
    second = workq("queues", "--page", "2", "--json", *common)
    assert second.returncode == 0, second.stderr
    assert [row["job_name"] for row in first + json.loads(second.stdout)] == names
    assert "page 2 of 2; 25 queues" in workq("queues", "--page", "2", *common).stdout


@pytest.mark.parametrize("view", ["queues", "workers", "scheduled", "schedules", "retry", "dead"])
def test_an_empty_view_names_its_namespace_and_how_to_change_it(view: str, common: list[str], namespace: str) -> None:
    result = workq(view, *common)
    assert result.returncode == 0, result.stderr
    assert f"namespace '{namespace}'" in result.stdout
    assert "--namespace NS" in result.stdout and "WORKQ_NAMESPACE" in result.stdout


def test_scheduled_lists_one_off_jobs_apart_from_cron_ticks(
    pool: WorkerPool, common: list[str], namespace: str, redis_url: str
) -> None:
    one_off = Enqueuer(namespace, redis_url).enqueue_in("email", 600, {"to": "a@b.c"})
    listed = json.loads(workq("scheduled", "--json", *common).stdout)
    assert [job["id"] for job in listed["jobs"]] == [one_off.id]
    assert listed["kind"] == "one_off" and listed["not_shown"] >= 20
    assert "cron tick(s) not shown: `workq scheduled --cron`" in workq("scheduled", *common).stdout
    ticks = json.loads(workq("scheduled", "--cron", "--json", *common).stdout)
    assert ticks["total"] >= 20 and ticks["not_shown"] == 1
    assert all(job["id"].startswith(f"periodic:report:{EVERY_10S}:") for job in ticks["jobs"])


def test_schedules_lists_specs_with_next_fire_times(pool: WorkerPool, common: list[str]) -> None:
    [schedule] = json.loads(workq("schedules", "--json", *common).stdout)
    assert (schedule["job_name"], schedule["spec"], schedule["pool_ids"]) == ("report", EVERY_10S, [pool.pool_id])
    first, second, _ = schedule["next_fire_times"]
    assert second - first == 10 and time.time() - 1 <= first <= time.time() + 10
    table = workq("schedules", *common).stdout.splitlines()
    assert table[0].split()[:4] == ["JOB", "SPEC", "NEXT", "THEN"]
    assert table[1].startswith("report") and EVERY_10S in table[1]


def test_a_retried_job_shows_its_original_enqueue_time_and_fails(
    namespace: str, redis_url: str, redis_client: redis.Redis, common: list[str]
) -> None:
    enqueued_at = int(time.time()) - 600
    redis_client.lpush(f"{namespace}:jobs:flaky", Job(name="flaky", id="f1", enqueued_at=enqueued_at).to_json())
    failing = WorkerPool(namespace, redis_url, concurrency=1)

    def flaky(job: Job) -> None:
        raise RuntimeError("down")

    failing.job("flaky", flaky, max_fails=5, backoff=lambda job: 0 if job.fails < 2 else 3600)
    with failing:
        wait_until(
            lambda: Job.from_json(m).fails == 2 if (m := _only_retry(redis_client, namespace)) else False,
            timeout=20,
            what="the second failure",
        )
    [job] = json.loads(workq("retry", "--json", *common).stdout)["jobs"]
    assert (job["fails"], job["first_enqueued_at"]) == (2, enqueued_at)
    assert job["enqueued_at"] > enqueued_at, "t is the requeue time, as gocraft/work's requeuer sets it"
    table = workq("retry", *common).stdout
    assert time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(enqueued_at)) in table


def _only_retry(redis_client: redis.Redis, namespace: str) -> bytes | None:
    members = redis_client.zrange(f"{namespace}:retry", 0, -1)
    return members[0] if members else None
