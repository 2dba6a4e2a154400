"""`stop(grace)` while a fetch is on its way and Redis stalls (issue 10, point 7).

A fetch that returns after stopping began hands its job straight back instead of running it, the pool deregisters
only once no fetch is in flight, and `stop(grace)` returns within grace + `STOP_SETTLE` even while Redis still
sleeps. Otherwise the stopping pool runs the job while another pool's reaper, seeing it gone, runs it too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from redis_servers import HOST, RedisServer
from reliability.harness import report
from support import wait_until
from workq import Client, Enqueuer, Job, WorkerPool
from workq.dispatcher import Dispatcher
from workq.keys import Keys
from workq.priority_sampler import PrioritySampler
from workq.registration import Registration
from workq.running_pool import STOP_SETTLE

STALL = 4
"""Seconds of `DEBUG SLEEP`: longer than grace + STOP_SETTLE, so that `stop()` must return while Redis sleeps."""
GRACE = 0.5
STOP_MARGIN = 0.5
"""What `stop(grace)` may take beyond grace + STOP_SETTLE (thread start-up and joins on a loaded machine)."""
HOLD = 2.0
"""How long a run in the stopping pool stands for work: long enough for the other pool's reaper to act meanwhile."""
HEARTBEAT_INTERVAL = 0.2
DEAD_AFTER = 6.0
"""Short, yet longer than the stall: nobody can beat while Redis sleeps, and a stall past it makes any pool look dead
(the other pool's reaper then takes the stopping pool only for having left `worker_pools`)."""
MONITOR_END = "monitor-end"


def test_a_fetch_returning_after_stop_began_hands_its_job_back(
    stallable_redis: RedisServer, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stopping pool's fetch, sent as Redis stalls, gets the job when Redis wakes: the job runs once, in the other
    (live, short `dead_after`) pool; `stop(grace=0.5)` returns while Redis still sleeps."""
    runs: list[str] = []
    blocker_running, release_blocker = threading.Event(), threading.Event()
    other = _pool(stallable_redis, namespace, "other", runs)

    @other.job("blocker")
    def block(job: Job) -> None:
        blocker_running.set()
        release_blocker.wait(30)

    stopping = _pool(stallable_redis, namespace, "stopping", runs)
    fetch_held, stall_sent = threading.Event(), threading.Event()

    def hold_fetch_until_stalled() -> None:
        """Send the stopping pool's next fetch only once the stall was sent: Redis runs it after the sleep."""
        if not stall_sent.is_set():
            fetch_held.set()
            stall_sent.wait(10)

    client, enqueuer = Client(namespace, stallable_redis.url), Enqueuer(namespace, stallable_redis.url)
    keys = Keys(namespace)
    try:
        other.start()
        enqueuer.enqueue("blocker")  # keeps the other pool's one worker from fetching: the stalled fetch gets the job
        assert blocker_running.wait(10), "the other pool did not start its blocker job"
        client.pause("job")
        enqueuer.enqueue("job")
        stopping.start()
        with _monitor(stallable_redis) as commands:
            _on_fetch(monkeypatch, stopping.pool_id, hold_fetch_until_stalled)
            assert fetch_held.wait(5), "the stopping pool did not fetch again"
            admin = _stall_then_unpause(stallable_redis, keys.paused("job"))
            stall_sent.set()
            began = time.monotonic()
            stopping.stop(grace=GRACE)
            stop_seconds = time.monotonic() - began
            stall_outlasted_stop = not admin.can_read(timeout=0)
            admin.read_response()  # the stall is over
            admin.read_response()  # and the job is no longer paused
            admin.disconnect()
            release_blocker.set()
            wait_until(
                lambda: runs and not _jobs_held(stallable_redis, keys, stopping.pool_id),
                timeout=10,
                what="the job to run and no copy of it to be queued or held",
            )
        fetched_at, deregistered_at = _fetch_and_deregistration(commands, keys, stopping.pool_id)
        report(
            "stop(grace) during a stalled fetch",
            enqueued=1,
            completed=min(len(runs), 1),
            lost=int(not runs),
            run_twice=int(len(runs) > 1),
            runs=runs,
            stop_seconds=stop_seconds,
            bound=GRACE + STOP_SETTLE,
            deregistered="no (left to the reaper)" if deregistered_at is None else f"command {deregistered_at}",
            fetched=f"command {fetched_at}",
        )
        assert fetched_at is not None, "the stalled fetch of the stopping pool did not take the job (no reproduction)"
        assert runs == ["other"], f"the job ran in {runs}, not once in the other pool"
        assert stop_seconds <= GRACE + STOP_SETTLE + STOP_MARGIN
        assert stall_outlasted_stop, "stop() returned only after Redis woke (no stall to bound)"
        assert deregistered_at is None or deregistered_at > fetched_at, "deregistered while its fetch was in flight"
    finally:
        release_blocker.set()
        other.stop(grace=5)
        stopping.stop(grace=0)


def _pool(server: RedisServer, namespace: str, name: str, runs: list[str]) -> WorkerPool:
    """A one-thread pool whose `job` handler notes `name` in `runs` as it starts (the stopping pool's run lasts)."""
    pool = WorkerPool(
        namespace, server.url, concurrency=1, heartbeat_interval=HEARTBEAT_INTERVAL, dead_after=DEAD_AFTER
    )

    def run(job: Job) -> None:
        runs.append(name)
        if name == "stopping":
            threading.Event().wait(HOLD)  # stands for the work the job does

    pool.job("job", run)
    return pool


def _on_fetch(monkeypatch: pytest.MonkeyPatch, pool_id: str, note: Callable[[], object]) -> None:
    """Call `note()` as a worker of pool `pool_id` starts a fetch."""
    fetch = Dispatcher._fetch

    def noted_fetch(dispatcher: Dispatcher, sampler: PrioritySampler[Registration], *more: Any) -> object:
        if dispatcher._context.pool_id == pool_id:
            note()
        return fetch(dispatcher, sampler, *more)

    monkeypatch.setattr(Dispatcher, "_fetch", noted_fetch)


def _stall_then_unpause(server: RedisServer, paused_key: str) -> redis.Connection:
    """`DEBUG SLEEP`, and the unpause pipelined behind it on one connection: it runs as Redis wakes, before the
    commands other clients sent meanwhile (the stalled fetch among them). Read both replies to know they ran."""
    connection = redis.Connection(host=HOST, port=server.port, socket_timeout=STALL + 10)
    connection.connect()
    connection.send_packed_command(connection.pack_commands([("DEBUG", "SLEEP", STALL), ("DEL", paused_key)]))
    return connection


@contextmanager
def _monitor(server: RedisServer) -> Iterator[list[str]]:
    """The commands Redis runs meanwhile, in the order it runs them (`MONITOR`, including scripts' own calls)."""
    commands: list[str] = []
    client = server.client(socket_timeout=STALL + 10)

    def listen() -> None:
        with client.monitor() as monitor:
            ready.set()
            while MONITOR_END not in (command := str(monitor.next_command()["command"])):
                commands.append(command.lower())

    ready = threading.Event()
    listener = threading.Thread(target=listen, name="monitor", daemon=True)
    listener.start()
    assert ready.wait(5), "MONITOR did not start"
    try:
        yield commands
    finally:
        server.client().echo(MONITOR_END)
        listener.join(10)
        client.close()


def _fetch_and_deregistration(commands: list[str], keys: Keys, pool_id: str) -> tuple[int | None, int | None]:
    """Where, in the server's order, the job moved into the pool's in-progress list, and where the pool left
    `worker_pools` (None: it did not)."""
    in_progress = keys.in_progress("job", pool_id).lower()
    fetched = [at for at, command in enumerate(commands) if "rpoplpush" in command and in_progress in command]
    left = [
        at
        for at, command in enumerate(commands)
        if command.startswith("srem") and keys.worker_pools.lower() in command and pool_id in command
    ]
    return (fetched[0] if fetched else None), (left[0] if left else None)


def _jobs_held(server: RedisServer, keys: Keys, pool_id: str) -> int:
    """`job` jobs queued, or in the stopping pool's in-progress list."""
    client = server.client()
    try:
        return int(client.llen(keys.queue("job"))) + int(client.llen(keys.in_progress("job", pool_id)))
    finally:
        client.close()
