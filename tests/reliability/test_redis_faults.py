"""Redis faults under running workers: killed connections and a restart (an empty Redis comes back). Every test
here runs its own redis-server: none of them touches the shared one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from redis_servers import RedisServer
from reliability.app import LEASED_TIMEOUT
from reliability.harness import (
    DEAD_AFTER,
    SYNC_AND_ASYNC,
    Fleet,
    WorkerProcess,
    in_progress_ids,
    leftovers,
    report,
    runs_by_job,
    seconds_since,
    tally,
    wait_for_completed,
)
from support import wait_until
from workq import ConnectionFailed, Enqueuer, Job

RESTART_OUTAGE = 1.5
"""How long Redis stays down in the restart test: workers meet it in their fetches, acks and background loops."""
FAULT_MARKERS = ("Redis unavailable", "could not ")
"""What workq logs when a Redis call fails: a fetch or background loop, or finishing a job (retried)."""


def fault_lines(workers: list[WorkerProcess]) -> int:
    return sum(worker.log.count(marker) for worker in workers for marker in FAULT_MARKERS)


def noop() -> None:
    """Nothing to do while Redis is down."""


NOTICED_OUTAGE = 3
"""Fault lines a worker has logged once its fetch path or its background loops (several) have met the outage."""


def restart(
    server: RedisServer, workers: list[WorkerProcess], down_for: float = 0.0, while_down: Callable[[], None] = noop
) -> float:
    """Stop Redis, wait until every worker has logged the outage a few times and `down_for` seconds have passed,
    then start Redis again (empty). Returns the outage in seconds."""
    server.stop()
    stopped_at = time.monotonic()
    for worker in workers:
        worker.wait_for_log("Redis unavailable", times=NOTICED_OUTAGE)
        assert worker.alive, worker.log
    while_down()
    time.sleep(max(0.0, down_for - seconds_since(stopped_at)))  # the fault itself: Redis stays down this long
    server.start()
    return seconds_since(stopped_at)


def test_workers_carry_on_when_redis_kills_their_connections(
    private_redis: RedisServer, fleet: Fleet, namespace: str
) -> None:
    """Half the jobs have a lease (`timeout`), half not: a fetch whose reply dies with its connection is found again
    by its lease, or by the pool's orphan sweeper (see test_a_fetch_whose_reply_is_lost_strands_no_job)."""
    url, client = private_redis.url, private_redis.client()
    workers = [fleet.start(url, concurrency=4) for _ in range(2)]
    for worker in workers:
        worker.pool_id()
    enqueuer = Enqueuer(namespace, url)
    ids = [
        job.id for name in ("work", "work_leased") for job in enqueuer.enqueue_many(name, [{"seconds": 0.005}] * 500)
    ]

    killed = 0
    for round_number in range(1, 6):
        wait_for_completed(client, namespace, 150 * round_number)
        killed += int(client.client_kill_filter(_type="normal", skipme=True))
        assert all(worker.alive for worker in workers)

    wait_until(lambda: tally(client, namespace, ids).lost == 0, timeout=LEASED_TIMEOUT + 30, what="every job")
    wait_until(lambda: not leftovers(client, namespace), timeout=LEASED_TIMEOUT + 10, what="counters to settle")
    outcome = tally(client, namespace, ids)
    report("client-kill", **outcome.figures(), connections_killed=killed, fault_log_lines=fault_lines(workers))
    assert outcome.lost == 0 and outcome.unexpected == 0
    assert all(worker.alive for worker in workers)
    assert client.zcard(f"{namespace}:dead") == 0
    assert not any("unexpected error" in worker.log for worker in workers), fleet.logs()


@SYNC_AND_ASYNC
def test_workers_carry_on_through_a_redis_restart(
    private_redis: RedisServer, fleet: Fleet, namespace: str, handler_kind: str
) -> None:
    """Redis comes back empty: jobs queued before are gone (expected: it keeps nothing); jobs enqueued after all run."""
    url, client = private_redis.url, private_redis.client()
    workers = [fleet.start(url, concurrency=3) for _ in range(2)]
    for worker in workers:
        worker.pool_id()
    enqueuer = Enqueuer(namespace, url)
    before = [job.id for job in enqueuer.enqueue_many("work", [{"seconds": 0.05}] * 200)]
    wait_for_completed(client, namespace, 30)
    completed_before = len(runs_by_job(client, namespace))

    refused: list[str] = []

    def enqueue_while_down() -> None:
        with pytest.raises(ConnectionFailed) as raised:
            enqueuer.enqueue("work")
        refused.append(str(raised.value))

    outage = restart(private_redis, workers, down_for=RESTART_OUTAGE, while_down=enqueue_while_down)
    assert refused and refused[0].startswith("cannot reach Redis at 127.0.0.1:"), refused
    back_at = time.monotonic()
    after = [job.id for job in enqueuer.enqueue_many("work", [{"seconds": 0.01}] * 200)]
    wait_until(lambda: runs_by_job(client, namespace).keys() & set(after), timeout=30, what="a first job after")
    resumed = seconds_since(back_at)
    wait_until(lambda: tally(client, namespace, after).lost == 0, timeout=30, what="every job enqueued after")

    outcome = tally(client, namespace, after)
    finished_across = len(set(runs_by_job(client, namespace)) & set(before))
    report(
        f"redis-restart[{handler_kind}]",
        enqueued_before=len(before),
        completed_before=completed_before,
        finished_across_restart=finished_across,
        **outcome.figures(),
        outage=outage,
        first_job_after=resumed,
    )
    assert outcome.lost == 0
    assert outcome.unexpected == finished_across, "a job nobody enqueued ran"
    assert all(worker.alive for worker in workers)
    assert not any("unexpected error" in worker.log for worker in workers), fleet.logs()


BLOCK_AND_PUSH = """
redis.call('lpush', KEYS[1], unpack(ARGV, 2))
local started = redis.call('time')
local deadline = started[1] * 1000000 + started[2] + tonumber(ARGV[1]) * 1000000
repeat
  local now = redis.call('time')
until now[1] * 1000000 + now[2] >= deadline
return 1
"""
"""Push jobs, then hold the server for ARGV[1] seconds, so that workers' fetches queue up behind the script."""
BLOCK_SECONDS = 1.6
KILL_AFTER = 1.3
"""Idle workers poll at least once a second, so by then every worker thread has a fetch queued behind the script;
the kill, sent last, is processed in the same event-loop pass as those fetches, before their replies go out."""


def test_a_fetch_whose_reply_is_lost_strands_no_job(private_redis: RedisServer, fleet: Fleet, namespace: str) -> None:
    """fetch.lua ran but its reply died with the connection: the job sits in the live pool's in-progress list, held
    by no worker. The reaper only looks at dead pools; the pool itself must put it back."""
    admin = private_redis.client()
    admin.acl_setuser("tester", enabled=True, nopass=True, keys=["*"], channels=["*"], commands=["+@all"])
    tester_url = f"redis://tester:x@127.0.0.1:{private_redis.port}/0"
    workers = [fleet.start(private_redis.url, concurrency=3) for _ in range(2)]
    pool_ids = [worker.pool_id() for worker in workers]
    tester = redis.Redis.from_url(tester_url, socket_timeout=10)
    killer = redis.Redis.from_url(tester_url, socket_timeout=10)
    killer.ping()  # connected and authenticated now: during the block it sends nothing but the kill
    jobs = [Job(name="work", enqueued_at=int(time.time())) for _ in range(6)]
    queue = f"{namespace}:jobs:work"

    blocker = threading.Thread(
        target=tester.eval, args=(BLOCK_AND_PUSH, 1, queue, BLOCK_SECONDS, *[job.to_json() for job in jobs])
    )
    blocker.start()
    time.sleep(KILL_AFTER)  # the fault's timing, not a wait for an event: see KILL_AFTER
    killed = killer.client_kill_filter(user="default")
    blocker.join(10)
    killed_at = time.monotonic()

    stranded = [job_id for pool_id in pool_ids for job_id in in_progress_ids(tester, namespace, "work", pool_id)]
    assert stranded, "no fetch lost its reply: the fault was not reproduced"
    for worker in workers:
        worker.wait_for_log("Redis unavailable")
    ids = [job.id for job in jobs]
    wait_until(lambda: tally(tester, namespace, ids).lost == 0, timeout=DEAD_AFTER + 10, what="every job")
    recovery = seconds_since(killed_at)
    wait_until(lambda: not leftovers(tester, namespace), timeout=5, what="counters to settle")
    outcome = tally(tester, namespace, ids)
    report(
        "lost-fetch-reply",
        **outcome.figures(),
        connections_killed=killed,
        in_progress_unheld=len(stranded),
        recovery=recovery,
    )
    assert all(worker.alive for worker in workers)
    assert outcome.duplicated == 0, "a job whose reply was lost also ran elsewhere"


def test_max_concurrency_still_holds_after_a_redis_restart(
    private_redis: RedisServer, fleet: Fleet, namespace: str
) -> None:
    url, client = private_redis.url, private_redis.client()
    workers = [fleet.start(url, concurrency=3) for _ in range(2)]
    for worker in workers:
        worker.pool_id()
    restart(private_redis, workers)
    for worker in workers:
        worker.pool_id()
    ids = [job.id for job in Enqueuer(namespace, url).enqueue_many("exclusive", [{"seconds": 0.3}] * 10)]
    wait_until(lambda: tally(client, namespace, ids).lost == 0, timeout=30, what="every exclusive job")
    most = int(client.get(f"{namespace}:test:max_running:exclusive") or 0)
    report("max-concurrency-after-restart", **tally(client, namespace, ids).figures(), max_running=most)
    assert most == 1


def enqueue_from_a_fresh_thread(enqueuer: Enqueuer, name: str, args_list: list[dict[str, Any]]) -> list[str]:
    """Enqueue as another request thread of the application would: one that has not used the Enqueuer yet."""
    ids: list[str] = []
    thread = threading.Thread(target=lambda: ids.extend(job.id for job in enqueuer.enqueue_many(name, args_list)))
    thread.start()
    thread.join(10)
    assert ids, "the enqueue failed"
    return ids


def test_a_worker_killed_after_a_redis_restart_has_its_jobs_recovered(
    private_redis: RedisServer, fleet: Fleet, namespace: str
) -> None:
    url, client = private_redis.url, private_redis.client()
    enqueuer = Enqueuer(namespace, url)  # the application's long-lived enqueuer
    warm_up = enqueuer.enqueue("work")
    victim, survivor = [fleet.start(url, concurrency=3) for _ in range(2)]
    victim.pool_id()
    survivor.pool_id()
    wait_until(lambda: runs_by_job(client, namespace)[warm_up.id], timeout=10, what="the first job")
    restart(private_redis, [victim, survivor])
    victim_pool = victim.pool_id()
    survivor.pool_id()

    ids = enqueue_from_a_fresh_thread(enqueuer, "work", [{"seconds": 1.0}] * 6)
    wait_until(lambda: in_progress_ids(client, namespace, "work", victim_pool), timeout=10, what="victim's jobs")
    victim.kill()
    killed_at = time.monotonic()
    stranded = in_progress_ids(client, namespace, "work", victim_pool)
    try:
        wait_until(lambda: tally(client, namespace, ids).lost == 0, timeout=DEAD_AFTER + 6, what="every job")
    finally:
        outcome = tally(client, namespace, ids)
        report("kill-after-restart", **outcome.figures(), stranded=len(stranded), waited=seconds_since(killed_at))
    assert survivor.alive


def test_an_enqueuer_works_at_once_after_a_redis_restart(private_redis: RedisServer, namespace: str) -> None:
    enqueuer = Enqueuer(namespace, private_redis.url)
    enqueuer.enqueue("work")
    enqueuer.enqueue("work")  # a name already known: the thread's own connection carries the push
    private_redis.stop()
    private_redis.start()
    try:
        job = enqueuer.enqueue("work")
    finally:
        report("enqueue-after-restart", queued=private_redis.client().llen(f"{namespace}:jobs:work"))
    assert private_redis.client().lrange(f"{namespace}:jobs:work", 0, -1) == [job.to_json().encode()]


LONG_OUTAGE = 3.3
"""Long enough for a heartbeat that backed off like the other loops (0.2 s × 2**failures: the next try ~6 s after
the first failure) to stay silent for longer than dead_after once Redis is back."""


def test_heartbeats_resume_within_dead_after_once_redis_is_back(
    private_redis: RedisServer, fleet: Fleet, namespace: str
) -> None:
    """Else, once Redis is back, other pools' reapers would take a live pool for dead and run its jobs twice."""
    workers = [fleet.start(private_redis.url, concurrency=1) for _ in range(2)]
    for worker in workers:
        worker.pool_id()
    outage = restart(private_redis, workers, down_for=LONG_OUTAGE)
    back_at = time.monotonic()
    silent = []
    for worker in workers:
        worker.pool_id(timeout=40)
        silent.append(seconds_since(back_at))
    report("heartbeat-after-outage", outage=outage, silent_after_restart=max(silent))
    assert max(silent) <= DEAD_AFTER
