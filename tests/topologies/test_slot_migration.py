"""A slowed manual migration of a namespace's slot to another master while a pool works through its jobs.

From CLUSTER SETSLOT MIGRATING until SETSLOT NODE, a script whose keys are not all on one node is refused with
TRYAGAIN (or ASK, then TRYAGAIN), and redis-py gives up with ClusterError("TTL exhausted"). Redis ran none of
those commands, so workers retry them: no job is lost, none runs twice. (Before, a refused ack was abandoned and
the orphan sweeper ran the job again.) At the API the refusal is a ConnectionFailed."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from redis_servers import HOST, RedisProcess
from support import wait_until
from topologies.conftest import PoolMaker
from topologies.servers import Cluster, elapsed_since, report
from workq import ConnectionFailed, Enqueuer, Job

NAMESPACE = "{migrating}"
JOBS = 120
CONCURRENCY = 8
JOB_SECONDS = 0.25
"""Long enough that every worker holds a job as the first keys move, so their acks meet the half-moved slot."""
KEYS_PER_STEP = 2
STEP_PAUSE = 0.5
"""Seconds the slot stays half-moved after each MIGRATE: the fault itself, a migration of a few seconds."""


class Runs:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, job_id: str) -> None:
        with self._lock:
            self.counts[job_id] += 1

    def distinct(self) -> int:
        with self._lock:
            return len(self.counts)


@pytest.fixture
def enqueuer(cluster: Cluster) -> Iterator[Enqueuer]:
    made = Enqueuer(NAMESPACE, cluster.url)
    yield made
    made.redis.close()


def test_jobs_run_once_while_the_namespaces_slot_migrates(
    cluster: Cluster, make_pool: PoolMaker, enqueuer: Enqueuer
) -> None:
    slot = cluster.keyslot(NAMESPACE)
    source = cluster.node_holding(NAMESPACE)
    target = next(node for node in cluster.nodes if node is not source)
    runs = Runs()
    pool = make_pool(NAMESPACE, cluster.url, concurrency=CONCURRENCY, heartbeat_interval=0.5)

    @pool.job("work")
    def work(job: Job) -> None:
        time.sleep(JOB_SECONDS)  # stands for real work
        runs.add(job.id)

    ids = {job.id for job in enqueuer.enqueue_many("work", [{"n": n} for n in range(JOBS)])}
    started_at = time.monotonic()
    pool.start()
    wait_until(lambda: runs.distinct() >= 2 * CONCURRENCY, timeout=30, what="jobs to run before the migration")

    migration = SlotMigration(slot, source, target, cluster.nodes)
    refusals: list[BaseException] = []
    # Its new lock key is on neither node: refused (after redis-py's own retries) for as long as the slot is half-moved.
    enqueuing = threading.Thread(target=_enqueue_unique, args=(enqueuer, refusals), name="enqueue-while-migrating")
    migration.begin()
    try:
        enqueuing.start()
        moved = migration.move_keys(KEYS_PER_STEP, STEP_PAUSE)
        enqueuing.join(60)  # the slot stays half-moved until the enqueue has been refused
        refused_after = elapsed_since(migration.began_at)
    finally:
        migration.finish()
    assert cluster.node_holding(NAMESPACE) is target

    pool.drain(timeout=60)
    wall = elapsed_since(started_at)
    completed = ids & set(runs.counts)
    twice = sum(count - 1 for count in runs.counts.values())
    report(
        "slot migration",
        jobs=len(ids),
        completed=len(completed),
        lost=len(ids - completed),
        run_twice=twice,
        keys_moved=moved,
        enqueue_refused_s=refused_after,
        enqueue_raised=[type(error).__name__ for error in refusals],
        migration_s=migration.seconds,
        wall_s=wall,
    )
    assert ids == completed, "a job was lost"
    assert set(runs.counts) == ids
    assert twice == 0, f"{twice} runs beyond the first"
    assert len(refusals) == 1 and isinstance(refusals[0], ConnectionFailed), refusals
    assert "cannot serve this now" in str(refusals[0])


def _enqueue_unique(enqueuer: Enqueuer, refusals: list[BaseException]) -> None:
    try:
        enqueuer.enqueue_unique("work", {"n": -1})
    except BaseException as error:
        refusals.append(error)


class SlotMigration:
    """CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE a few keys at a time, then SETSLOT NODE on every master."""

    def __init__(self, slot: int, source: RedisProcess, target: RedisProcess, nodes: list[RedisProcess]) -> None:
        self._slot = slot
        self._source = source
        self._target = target
        self._nodes = nodes
        self.began_at = 0.0
        self.seconds = 0.0

    def _node_id(self, node: RedisProcess) -> str:
        with node.client() as client:
            node_id = client.execute_command("CLUSTER MYID")
        return node_id.decode() if isinstance(node_id, bytes) else str(node_id)

    def begin(self) -> None:
        with self._target.client() as target:
            target.execute_command("CLUSTER SETSLOT", self._slot, "IMPORTING", self._node_id(self._source))
        with self._source.client() as source:
            source.execute_command("CLUSTER SETSLOT", self._slot, "MIGRATING", self._node_id(self._target))
        self.began_at = time.monotonic()

    def move_keys(self, per_step: int, pause: float) -> int:
        moved = 0
        with self._source.client() as source:
            while keys := source.execute_command("CLUSTER GETKEYSINSLOT", self._slot, per_step):
                source.execute_command("MIGRATE", HOST, self._target.port, "", 0, 5000, "KEYS", *keys)
                moved += len(keys)
                time.sleep(pause)  # the fault's duration, not a synchronisation
        return moved

    def finish(self) -> None:
        """The slot is the target's: told to the target first, then to the source and the others."""
        target_id = self._node_id(self._target)
        ordered = [self._target, self._source, *(n for n in self._nodes if n not in (self._target, self._source))]
        for node in ordered:
            with node.client() as client:
                client.execute_command("CLUSTER SETSLOT", self._slot, "NODE", target_id)
        self.seconds = elapsed_since(self.began_at)
