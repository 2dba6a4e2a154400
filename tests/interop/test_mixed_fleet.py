"""workq beside the real gocraft/work (master and v0.5.1, built from source by `interop.go_fleet`) on one namespace
of the real Redis: issue 12's points, each checked against Go's own code rather than our reading of it."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from interop.conftest import report
from interop.fleet import Fleet
from interop.go_fleet import go_next_fire_times
from support import wait_until
from workq import Client, Job
from workq.keys import Keys
from workq.periodic import CronSchedule

pytestmark = pytest.mark.integration

FLOAT_ARGS = [
    {"x": 0.00001},
    {"x": 0.000015, "y": -0.0},
    {"x": 1e-7, "label": "a<b&c"},
    {"x": 9.99e-7, "n": 3},
    {"x": 1e21, "y": 1e16},
    {"x": 123456.789, "nested": {"z": [0.5, 1e-10, 2.0**60]}},
]
"""Unique args whose floats Go and Python's json print differently (0.00001 vs 1e-05, -0 vs -0.0, 1e+16...)."""


def test_jobs_enqueued_by_either_side_run_exactly_once(fleet: Fleet) -> None:
    """Go master, Go v0.5.1 and workq pools work one queue fed by all three enqueuers, directly and delayed (the
    requeuers of both kinds move due jobs): every job runs once."""
    started = time.monotonic()
    go_pools = [fleet.go_pool(version, ["mixed"], label=f"go-{version}") for version in ("master", "v0.5.1")]
    fleet.workq_pool({"mixed": {}})
    enqueued: set[str] = set()
    for version in ("master", "v0.5.1"):
        for in_seconds, count in ((0, 150), (1, 25)):
            lines = fleet.go_enqueue(version, "mixed", {"from": version}, count=count, in_seconds=in_seconds)
            enqueued |= {Job.from_json(line).id for line in lines}
    enqueuer = fleet.enqueuer
    enqueued |= {job.id for job in enqueuer.enqueue_many("mixed", [{"from": "workq", "i": i} for i in range(150)])}
    enqueued |= {enqueuer.enqueue_in("mixed", 1, {"from": "workq", "i": i}).id for i in range(25)}
    assert len(enqueued) == 525

    fleet.wait_for_runs(len(enqueued), "every job to run", timeout=60)
    for pool in go_pools:
        pool.stop()
    recorded = fleet.runs()
    per_id = Counter(run["id"] for run in recorded)
    assert set(per_id) == enqueued
    assert [job_id for job_id, count in per_id.items() if count > 1] == []
    report(
        "exactly once",
        jobs=len(enqueued),
        runs=len(recorded),
        duplicates=len(recorded) - len(per_id),
        by_side=dict(Counter(run["side"] for run in recorded)),
        seconds=round(time.monotonic() - started, 2),
    )


@pytest.mark.parametrize("version", ["master", "v0.5.1"])
def test_unique_jobs_with_float_args_are_deduplicated_across_languages(fleet: Fleet, version: str) -> None:
    """Point 1: the same unique job enqueued from Go and from workq takes one lock, whichever side comes first;
    once it runs, either side may enqueue it again (with v0.5.1 jobs, whose lock workq derives from the args, a
    `-0` read back as the int 0 missed Go's lock)."""
    enqueuer, client = fleet.enqueuer, fleet.redis
    for args in FLOAT_ARGS:
        assert fleet.go_enqueue(version, "go_first", args, unique=True) != ["dup"]
        assert enqueuer.enqueue_unique("go_first", args) is None, f"{args}: workq took a second lock"
        assert enqueuer.enqueue_unique("workq_first", args) is not None
        assert fleet.go_enqueue(version, "workq_first", args, unique=True) == ["dup"], f"{args}: Go took another"
    assert client.llen(f"{fleet.namespace}:jobs:go_first") == len(FLOAT_ARGS)
    assert client.llen(f"{fleet.namespace}:jobs:workq_first") == len(FLOAT_ARGS)

    fleet.workq_pool({"go_first": {}, "workq_first": {}})
    fleet.wait_for_runs(2 * len(FLOAT_ARGS), "the unique jobs to run")
    assert not list(client.scan_iter(match=f"{fleet.namespace}:unique:*")), "a lock outlived its job"
    for args in FLOAT_ARGS:  # released: both sides accept it again
        assert fleet.go_enqueue(version, "go_first", args, unique=True) != ["dup"]
        assert enqueuer.enqueue_unique("workq_first", args) is not None
    fleet.wait_for_runs(4 * len(FLOAT_ARGS), "the second round")
    report(
        f"unique floats ({version})",
        arg_sets=len(FLOAT_ARGS),
        duplicates_refused=2 * len(FLOAT_ARGS),
        runs=len(fleet.runs()),
    )


def test_v051_unique_job_releases_its_lock_when_run_by_workq(fleet: Fleet) -> None:
    """Point 2: v0.5.1 writes no `unique_key`; workq derives the lock from name and args, so the job's run frees
    it at once instead of after 24 h."""
    args = {"account": 7, "ratio": 0.00001}
    first = fleet.go_job("v0.5.1", "report", args, unique=True)
    assert first.unique and not first.unique_key
    assert fleet.go_enqueue("v0.5.1", "report", args, unique=True) == ["dup"]
    lock = Keys(fleet.namespace).unique_for("report", args)
    assert fleet.redis.get(lock) == b"1"

    fleet.workq_pool({"report": {}})
    fleet.wait_for_runs(1, "the v0.5.1 job to run")
    wait_until(lambda: not fleet.redis.exists(lock), 10, 0.05, "the lock to be released")
    second = fleet.go_job("v0.5.1", "report", args, unique=True)
    assert [run["id"] for run in fleet.wait_for_runs(2, "the second job to run")] == [first.id, second.id]

    # Go before 1.22 (Debian's is 1.19) writes U+0008 as \u0008 in the lock key, workq as \b, as Go 1.22 does.
    control = {"sep": "a\bb\fc"}
    fleet.go_job("v0.5.1", "report", control, unique=True)
    fleet.wait_for_runs(3, "the job with control characters to run")
    wait_until(lambda: not list(fleet.redis.scan_iter(match=f"{fleet.namespace}:unique:*")), 10, 0.05, "release")
    assert fleet.go_enqueue("v0.5.1", "report", control, unique=True) != ["dup"]


def test_cleanly_stopped_go_pool_by_key_leftover_is_not_rerun(fleet: Fleet) -> None:
    """Point 3: gocraft's worker runs a replaced by-key job from its lock and leaves the queued placeholder in its
    in-progress list; after the Go pool's clean stop, workq's reaper drops it without a run. A killed Go pool's
    job, by contrast, is reaped and run."""
    client = fleet.redis
    assert fleet.go_enqueue("master", "sync", {"v": "old"}, key={"user": 1}) != ["dup"]
    assert fleet.go_enqueue("master", "sync", {"v": "new"}, key={"user": 1}) == ["dup"]
    go_pool = fleet.go_pool("master", ["sync"], label="go-master")
    fleet.wait_for_runs(1, "the by-key job to run in Go")
    go_pool.stop()
    [leftover] = client.scan_iter(match=f"{fleet.namespace}:jobs:sync:*:inprogress")
    placeholders = client.lrange(leftover, 0, -1)
    assert len(placeholders) == 1 and b'"v":"old"' in placeholders[0], "gocraft/work left no placeholder"

    # No Go pool is live now: a short dead_after is safe (see docs/interop.md) and keeps the test short.
    sync_pool = fleet.workq_pool({"sync": {}}, dead_after=3.0)
    wait_until(lambda: not client.exists(leftover), 30, 0.05, "the reaper to drop the leftover")
    marker = fleet.enqueuer.enqueue("sync", {"v": "marker"})
    recorded = fleet.wait_for_runs(2, "the marker to run")
    assert [(run["side"], run["args"]["v"]) for run in recorded] == [("go-master", "new"), ("workq", "marker")]
    assert recorded[1]["id"] == marker.id
    sync_pool.stop()

    # A Go pool killed while it runs a job held it by its counters: the reaper hands it to workq.
    killed = fleet.go_pool("master", ["held"], label="go-killed", hold=["held"])
    held = fleet.enqueuer.enqueue("held", {"v": 1})
    fleet.wait_for_runs(3, "the held job to start in Go")
    killed.kill()
    fleet.workq_pool({"held": {}}, dead_after=6.0)
    recorded = fleet.wait_for_runs(4, "the killed pool's job to run in workq", timeout=60)
    assert [(run["side"], run["id"]) for run in recorded[2:]] == [("go-killed", held.id), ("workq", held.id)]


def test_go_requeuer_dead_letters_unregistered_names_and_rescue(fleet: Fleet) -> None:
    """Point 4: a delayed job of a name no Go pool registers is dead-lettered by gocraft's requeuer (gocraft #117),
    rewritten by cjson on the way (a big integer keeps 14 digits); `retry_dead_jobs(reason=...)` rescues it and
    workq runs it once, with the rounded number, as docs/interop.md says."""
    fleet.go_pool("master", ["go_only"], label="go-master")
    python_only = fleet.enqueuer.enqueue_in("py_only", 1, {"account_id": 12345678901234567})
    go_only = fleet.enqueuer.enqueue_in("go_only", 1, {"account_id": 12345678901234567})
    client = Client(fleet.namespace, fleet.redis)
    dead = wait_until(lambda: client.dead_jobs()[0], 30, 0.1, "gocraft's requeuer to dead-letter py_only")
    assert [(job.id, job.last_err) for job in dead] == [(python_only.id, "unknown job when requeueing")]
    assert b'"account_id":1.2345678901235e+16' in fleet.redis.zrange(f"{fleet.namespace}:dead", 0, -1)[0]
    assert fleet.wait_for_runs(1, "go_only to run in Go")[0]["id"] == go_only.id

    assert client.retry_dead_jobs(reason="unknown job") == 1
    fleet.workq_pool({"py_only": {}})
    rescued = fleet.wait_for_runs(2, "the rescued job to run")[1]
    assert (rescued["side"], rescued["id"]) == ("workq", python_only.id)
    assert rescued["args"]["account_id"] == 12345678901235000  # rounded by cjson, as documented
    assert client.dead_jobs()[1] == 0


def test_the_last_pool_started_sets_max_concurrency(fleet: Fleet) -> None:
    """Point 5: a Go pool started after a workq pool keeps the cap it wrote through workq's heartbeats (workq
    used to write its own back on every beat); a cap lost with a Redis restart is written again."""
    cap_key = Keys(fleet.namespace).max_concurrency("capped")
    pool = fleet.workq_pool({"capped": {"max_concurrency": 2}}, heartbeat_interval=0.2, dead_after=12.0)
    wait_until(lambda: fleet.redis.get(cap_key) == b"2", 10, 0.05, "workq's cap")
    fleet.go_pool("master", ["capped:5"], label="go-master")
    assert fleet.redis.get(cap_key) == b"5"
    beats = Client(fleet.namespace, fleet.redis).worker_pool_heartbeats

    def heartbeat_at() -> int:
        return next(beat.heartbeat_at for beat in beats() if beat.worker_pool_id == pool.pool_id)

    first = heartbeat_at()
    wait_until(lambda: heartbeat_at() >= first + 2, 10, 0.05, "two more workq heartbeats")
    assert fleet.redis.get(cap_key) == b"5"
    fleet.redis.delete(cap_key)
    wait_until(lambda: fleet.redis.get(cap_key) == b"2", 10, 0.05, "workq to heal the lost cap")


def test_busy_workers_show_args_as_gocraft_work_writes_them(fleet: Fleet) -> None:
    """Point 6: a worker's observation holds its job's args exactly as a Go worker's does (json.Marshal: no
    spaces, Go's floats and escapes), so both dashboards show the same bytes."""
    args = {"ratio": 0.00001, "tiny": 1e-7, "neg": -0.0, "name": "é<b>", "n": [1, 2.5]}
    fleet.go_pool("master", ["observed_go"], label="go-master", hold=["observed_go"])
    fleet.workq_pool({"observed_py": {}}, hold=["observed_py"])
    fleet.go_enqueue("master", "observed_go", args)
    fleet.enqueuer.enqueue("observed_py", args)
    client = Client(fleet.namespace, fleet.redis)

    def observed() -> dict[str, str]:
        return {busy.job_name: busy.args_json for busy in client.worker_observations() if busy.job_name}

    seen = wait_until(lambda: len(observed()) == 2 and observed(), 30, 0.05, "both workers to be observed")
    assert (
        seen["observed_py"]
        == seen["observed_go"]
        == '{"n":[1,2.5],"name":"é\\u003cb\\u003e","neg":-0,"ratio":0.00001,"tiny":1e-7}'
    )
    fleet.release()
    fleet.wait_for_runs(2, "both held jobs")


CRON_SPECS = [
    "0 30 9 * * *",
    "0 0 9 * * 1-5",
    "0 0 * * * *",
    "0 */20 * * * *",
    "30 15 1 * * *",
    "@daily",
    "0 0 0 1 * *",
]
CRON_ZONES = ["UTC", "America/New_York", "Europe/Paris", "Asia/Kolkata", "Australia/Sydney", "America/Sao_Paulo"]
CRON_STARTS = [1772600000, 1774800000, 1792000000, 1793300000]
"""March and October 2026: both DST changes of New York, Paris and Sydney fall within 60 ticks of one of them."""


def test_cron_timezone_gives_the_fire_times_of_a_go_host_in_that_zone(fleet: Fleet) -> None:
    """Point 6: gocraft/work evaluates cron specs in its host's local time; `timezone=` gives workq the same fire
    times (gocraft's parser and robfig/cron v3's Next, run with TZ set), across DST changes. One known difference:
    a tick at a local time that a DST change skips (02:30 on the night clocks go forward) Go drops, workq fires
    at the end of the gap."""
    compared = 0
    for zone in CRON_ZONES:
        for after in CRON_STARTS:
            go_times = go_next_fire_times(fleet.binaries["master"], CRON_SPECS, after, 60, zone)
            for spec, times in zip(CRON_SPECS, go_times, strict=True):
                assert CronSchedule(spec, "tick", zone).fire_times(after, times[-1]) == times, (zone, spec, after)
                compared += len(times)
    [skipped] = go_next_fire_times(fleet.binaries["master"], ["0 30 2 * * *"], 1772900000, 2, "America/New_York")
    ours = CronSchedule("0 30 2 * * *", "tick", "America/New_York").fire_times(1772900000, skipped[-1])
    assert skipped == [1773037800, 1773124200]  # 2026-03-09 and 03-10 at 02:30 EDT: Go skips 03-08
    assert ours == [1772953200, *skipped]  # 2026-03-08 03:00 EDT, the end of the gap
    report("cron time zones", zones=len(CRON_ZONES), specs=len(CRON_SPECS), fire_times_equal=compared)
