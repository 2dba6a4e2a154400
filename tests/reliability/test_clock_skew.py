"""Hosts whose clocks disagree by ±30 s and ±10 min (issue 10, point 4).

Lease deadlines, heartbeat ages, due times and cron windows are all read on Redis's clock, so with pools and
enqueuers whose clocks are far apart no job runs twice, none starts early or is lost, no cron tick is lost, and no
live pool is taken for dead. Each pool or enqueuer is a `workq` process whose `time.time` is shifted (see
`skewed_clock`); handlers record when they started on Redis's clock.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

import redis

from reliability import skewed_clock
from reliability.app import CRON_ENV
from reliability.harness import TESTS_DIR, Fleet, leftovers, report, runs_by_job, text
from support import poll_count
from workq import Client, Enqueuer, Job
from workq.keys import Keys

RUN_SECONDS = 4.0
"""How long the leased jobs run: half their 8 s time-out (`work_leased_long`)."""
DELAY = 3.0
"""`enqueue --in` of the delayed jobs."""
DUE_SLACK = 12.0
"""Seconds after its due time by which a delayed job or cron tick must have started. A due time read on a skewed
clock is off by the skew, 30 s at the least here: well past this slack, which leaves a loaded machine room (a
requeuer pass is 1 s)."""
HEARTBEAT_SLACK = 10.0
"""How far a live pool's last heartbeat may be from Redis's now: a beat stamped on its own clock is 30 s off or more."""
CRON_SPEC = "* * * * * *"
CRON_WINDOW = 5
"""Seconds of cron ticks observed."""
DEAD_POOL_LOG = "reaper: removed dead pool"


def test_time_outs_and_heartbeats_hold_across_skewed_pools(
    fleet: Fleet, redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    """4 s jobs with an 8 s time-out, and 4 s jobs without one, on pools 10 min and 30 s behind and ahead: each runs
    once (a lease taken on one host is not expired by another's clock, and no live pool is reaped)."""
    offsets = (-600.0, -30.0, 30.0, 600.0)
    workers = [fleet.start(redis_url, concurrency=2, clock_offset=offset) for offset in offsets]
    for worker in workers:
        worker.pool_id()
    enqueuer = Enqueuer(namespace, redis_url)
    kinds = ("work_leased_long", "work")  # with an 8 s time-out, and without one
    names = {enqueuer.enqueue(name, {"seconds": RUN_SECONDS}).id: name for name in kinds for _ in range(4)}
    ids = list(names)

    # Progress, not speed: a job that ran twice (a lease expired by a skewed clock) is caught by the starts below.
    completed_count = poll_count(
        lambda: len(set(runs_by_job(redis_client, namespace)) & set(ids)), len(ids), stalled_after=2 * RUN_SECONDS + 15
    )
    settled = completed_count == len(ids) and _poll(lambda: not leftovers(redis_client, namespace), timeout=15)
    starts = runs_by_job(redis_client, namespace, "started")
    ran_by = _pids_by_job(redis_client, namespace)
    beats = {beat.pid: beat for beat in Client(namespace, redis_url).worker_pool_heartbeats()}
    now = _redis_now(redis_client)
    reaped = sum(worker.log.count(DEAD_POOL_LOG) for worker in workers)
    completed = set(runs_by_job(redis_client, namespace)) & set(ids)
    report(
        "clock skew ±30 s/±10 min, 8 s time-out, 4 s jobs",
        enqueued=len(ids),
        completed=len(completed),
        lost=len(set(ids) - completed),
        run_twice=sum(1 for job_id in ids if starts[job_id] > 1),
        run_twice_with_time_out=sum(1 for job_id in ids if starts[job_id] > 1 and names[job_id] != "work"),
        live_pools_reaped=reaped,
        jobs_per_offset=[sum(1 for pids in ran_by.values() if worker.pid in pids) for worker in workers],
    )
    assert settled, f"not every job completed with the namespace idle: {leftovers(redis_client, namespace)}"
    assert {job_id: count for job_id, count in starts.items() if count != 1} == {}, "a job ran more than once"
    assert reaped == 0, "a live pool was taken for dead"
    for worker, offset in zip(workers, offsets, strict=True):
        assert any(worker.pid in pids for pids in ran_by.values()), f"the pool {offset:+} s off ran no job"
        assert worker.pid in beats, f"the live pool {offset:+} s off is no longer registered"
        assert abs(beats[worker.pid].heartbeat_at - now) <= HEARTBEAT_SLACK, (
            f"the pool {offset:+} s off beats on its own clock"
        )


def test_delayed_jobs_from_skewed_enqueuers_start_when_due_on_redis_clock(
    fleet: Fleet, redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    """`enqueue --in 3` from hosts 10 min and 30 s behind and ahead, run by pools 10 min apart: every job starts no
    earlier than 3 s after it was enqueued on Redis's clock, and soon after that."""
    workers = [fleet.start(redis_url, concurrency=2, clock_offset=offset) for offset in (-600.0, 600.0)]
    for worker in workers:
        worker.pool_id()
    offsets = (-600.0, -30.0, 30.0, 600.0)
    enqueued_from = _redis_now(redis_client)
    ids = _enqueue_from_skewed_hosts(redis_url, namespace, offsets)
    enqueued_until = _redis_now(redis_client)

    _poll(lambda: set(ids) <= set(_start_times(redis_client, namespace)), timeout=DELAY + DUE_SLACK + 5)
    started = _start_times(redis_client, namespace)
    earliest, latest = enqueued_from + DELAY, enqueued_until + DELAY + DUE_SLACK
    early = {offset: started[job_id] for job_id, offset in ids.items() if started.get(job_id, [earliest])[0] < earliest}
    late = {offset for job_id, offset in ids.items() if not started.get(job_id) or started[job_id][0] > latest}
    report(
        f"clock skew ±30 s/±10 min, enqueue --in {DELAY:.0f}",
        enqueued=len(ids),
        completed=sum(1 for job_id in ids if started.get(job_id)),
        lost_or_late=len(late),
        run_twice=sum(1 for job_id in ids if len(started.get(job_id, [])) > 1),
        early_starts=len(early),
    )
    assert early == {}, f"delayed jobs started before their due time (enqueuer offset → start times): {early}"
    assert late == set(), f"delayed jobs from enqueuers {sorted(late)} s off did not start by {DUE_SLACK} s after due"
    assert all(len(started[job_id]) == 1 for job_id in ids), f"a delayed job ran more than once: {started}"


def test_no_cron_tick_is_lost_or_doubled_across_skewed_pools(
    fleet: Fleet, redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    """An every-second cron on pools 300 s and 10 min ahead and behind: each tick of the observed window runs exactly
    once and not before its time, and the scheduled set holds every coming tick once."""
    workers = [
        fleet.start(redis_url, concurrency=1, clock_offset=offset, env={CRON_ENV: CRON_SPEC})
        for offset in (-600.0, -300.0, 300.0, 600.0)
    ]
    for worker in workers:
        worker.pool_id()
    keys = Keys(namespace)
    _poll(lambda: redis_client.exists(keys.last_periodic_enqueue), timeout=10)
    first = int(_redis_now(redis_client)) + 2
    window = range(first, first + CRON_WINDOW)

    _poll(
        lambda: (
            _redis_now(redis_client) >= window[-1] + DUE_SLACK
            or set(window) <= set(_tick_start_times(redis_client, namespace))
        ),
        timeout=CRON_WINDOW + DUE_SLACK + 5,
    )
    ticks = _tick_start_times(redis_client, namespace)
    early = {fire_at: starts for fire_at, starts in ticks.items() if min(starts) < fire_at}
    runs_in_window = Counter({fire_at: len(ticks.get(fire_at, [])) for fire_at in window})
    coming = _scheduled_ticks(redis_client, keys)
    now = int(_redis_now(redis_client))
    ahead = range(now + 3, first + 200)
    report(
        "clock skew ±300 s/±10 min, every-second cron",
        ticks_expected=len(window),
        ticks_seen=sum(1 for runs in runs_in_window.values() if runs),
        lost=sum(1 for runs in runs_in_window.values() if not runs),
        run_twice=sum(1 for runs in runs_in_window.values() if runs > 1),
        early_starts=len(early),
        coming_ticks_missing=sum(1 for fire_at in ahead if not coming[fire_at]),
    )
    assert dict(runs_in_window) == dict.fromkeys(window, 1), f"runs per tick in the window: {dict(runs_in_window)}"
    assert early == {}, f"ticks started before their fire time (fire time → starts): {early}"
    assert [fire_at for fire_at in ahead if coming[fire_at] != 1] == [], "coming ticks missing or doubled"


def _enqueue_from_skewed_hosts(redis_url: str, namespace: str, offsets: Sequence[float]) -> dict[str, float]:
    """`workq enqueue clocked --in DELAY` from one process per offset, all at once; job id → its enqueuer's offset."""
    processes = {
        offset: subprocess.Popen(
            skewed_clock.command(
                "enqueue", "clocked", "--in", str(DELAY), "--redis-url", redis_url, "--namespace", namespace
            ),
            cwd=TESTS_DIR,
            env={**os.environ, skewed_clock.OFFSET_ENV: str(offset)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for offset in offsets
    }
    ids = {}
    for offset, process in processes.items():
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, f"enqueue from a host {offset:+} s off failed:\n{err}"
        ids[Job.from_json(out.strip()).id] = offset
    return ids


def _start_times(client: redis.Redis, namespace: str) -> dict[str, list[float]]:
    """Job id → when each of its runs started, on Redis's clock, in order (`clocked` handlers' records)."""
    starts: defaultdict[str, list[float]] = defaultdict(list)
    for record in client.hvals(f"{namespace}:test:started_at"):
        at, _, job_id = text(record).partition(" ")
        starts[job_id].append(float(at))
    return {job_id: sorted(times) for job_id, times in starts.items()}


def _tick_start_times(client: redis.Redis, namespace: str) -> dict[int, list[float]]:
    """Fire time → start times of the `cron_tick` runs (their ids end in the fire time)."""
    prefix = f"periodic:cron_tick:{CRON_SPEC}:"
    return {
        int(job_id.removeprefix(prefix)): times
        for job_id, times in _start_times(client, namespace).items()
        if job_id.startswith(prefix)
    }


def _scheduled_ticks(client: redis.Redis, keys: Keys) -> Counter[int]:
    """Fire time → how many `cron_tick` jobs for it wait in the scheduled set."""
    ticks: Counter[int] = Counter()
    for member in client.zrange(keys.scheduled, 0, -1):
        job = json.loads(member)
        if job["name"] == "cron_tick":
            ticks[int(job["id"].rsplit(":", 1)[1])] += 1
    return ticks


def _pids_by_job(client: redis.Redis, namespace: str) -> dict[str, set[int]]:
    """Job id → pids of the worker processes that started a run of it."""
    job_by_token = client.hgetall(f"{namespace}:test:started")
    pid_by_token = client.hgetall(f"{namespace}:test:started_by")
    pids: defaultdict[str, set[int]] = defaultdict(set)
    for token, job_id in job_by_token.items():
        pids[text(job_id)].add(int(pid_by_token[token]))
    return dict(pids)


def _redis_now(client: redis.Redis) -> float:
    seconds, microseconds = client.time()
    return int(seconds) + int(microseconds) / 1_000_000


def _poll(probe: Callable[[], object], timeout: float) -> bool:
    """True once `probe()` is truthy; False if it is not within `timeout` s (the test then reports what it saw)."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True
