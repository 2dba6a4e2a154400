"""Garbage in every kind of workq key — bad JSON, wrong JSON types, non-integer counters, strings where hashes, lists
or sorted sets belong — appears while a worker runs. It must surface as dead jobs or logged errors, the worker must
stay alive, and a valid job enqueued afterwards must still run."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import pytest
import redis

from reliability.app import HANG_TIMEOUT
from reliability.harness import Fleet, WorkerProcess, leftovers, report, runs_by_job, seconds_since, tally, text
from support import wait_until
from workq import Enqueuer, Job


@dataclass(frozen=True)
class Scene:
    """A running worker on the test's namespace, and where the garbage goes."""

    client: redis.Redis
    namespace: str
    pool_id: str
    worker: WorkerProcess

    def key(self, suffix: str) -> str:
        return f"{self.namespace}:{suffix}"

    def dead_records(self) -> list[dict[str, object]]:
        members = cast(list[bytes], self.client.zrange(self.key("dead"), 0, -1))
        return [json.loads(member) for member in members]

    def ghost_pool(self, pool_id: str, holding: list[str], heartbeat_at: str | None) -> None:
        """A pool that died holding `holding` in progress for `work` (heartbeat hash only when given)."""
        if heartbeat_at is not None:
            self.client.hset(self.key(f"worker_pools:{pool_id}"), "heartbeat_at", heartbeat_at)
        self.client.sadd(self.key("worker_pools"), pool_id)
        if holding:
            self.client.rpush(self.key(f"jobs:work:{pool_id}:inprogress"), *holding)
            self.client.hincrby(self.key("jobs:work:lock_info"), pool_id, len(holding))
            self.client.incrby(self.key("jobs:work:lock"), len(holding))

    def holds_anywhere(self, text: str) -> bool:
        """Whether any list or sorted set of the namespace still holds `text` (as is, or inside a dead record)."""
        for key in self.client.scan_iter(match=self.key("*"), count=1000):
            kind = self.client.type(key)
            members = (
                self.client.lrange(key, 0, -1)
                if kind == b"list"
                else self.client.zrange(key, 0, -1)
                if kind == b"zset"
                else []
            )
            if any(text.encode() in member for member in members):
                return True
        return False


@dataclass(frozen=True)
class Case:
    """Garbage to put in Redis once the worker runs, and what must be true once the valid job has run."""

    inject: Callable[[Scene, Job], None]
    check: Callable[[Scene], None]
    valid_in_queue: bool = True
    """False when `inject` already placed the valid job somewhere (e.g. in a dead pool's in-progress list)."""
    concurrency: int = 4
    """1 when the garbage must be dealt with before the valid job queued behind it starts."""


MALFORMED = ["{not json", "[]", '{"id":"x"}', '{"name":"work","args":[1]}', '{"name":"work","id":7}', "\udcff"]


def queue_payloads(scene: Scene, valid: Job) -> None:
    payloads = [text.encode("utf-8", "surrogateescape") for text in MALFORMED]
    scene.client.lpush(scene.key("jobs:work"), *payloads)


def check_queue_payloads(scene: Scene) -> None:
    wait_until(lambda: len(scene.dead_records()) == len(MALFORMED), timeout=5, what="every payload to be dead")
    assert all("malformed job payload in queue work" in str(record["err"]) for record in scene.dead_records())


SORTED_SET_GARBAGE = ["{broken", '{"name":"work","id":"x","t":"soon","args":null}', '{"name":"bad name","id":"y"}']


def sorted_set_members(scene: Scene, valid: Job) -> None:
    now = int(time.time())
    scene.client.zadd(scene.key("retry"), {SORTED_SET_GARBAGE[0]: now, SORTED_SET_GARBAGE[1]: now})
    scene.client.zadd(scene.key("scheduled"), {SORTED_SET_GARBAGE[2]: now - 5})


def check_sorted_set_members(scene: Scene) -> None:
    wait_until(lambda: len(scene.dead_records()) == 3, timeout=5, what="the due garbage to be dead")
    assert {record["payload"] for record in scene.dead_records()} == set(SORTED_SET_GARBAGE)
    assert scene.client.zcard(scene.key("retry")) == scene.client.zcard(scene.key("scheduled")) == 0


def dead_members(scene: Scene, valid: Job) -> None:
    scene.client.zadd(scene.key("dead"), {"{rotten": 1, "[]": 2})


def check_dead_members(scene: Scene) -> None:
    assert scene.client.zcard(scene.key("dead")) == 2, "dead garbage is the user's to inspect; nothing drops it"


def max_concurrency_value(scene: Scene, valid: Job) -> None:
    scene.client.set(scene.key("jobs:work:max_concurrency"), "lots")


def lock_info_of_unknown_pools(scene: Scene, valid: Job) -> None:
    scene.client.hset(scene.key("jobs:work:lock_info"), mapping={"ghost-a": "garbage", "ghost-b": "-5", "ghost-c": "3"})


def check_lock_info_of_unknown_pools(scene: Scene) -> None:
    wait_until(lambda: not leftovers(scene.client, scene.namespace), timeout=5, what="the reaper to drop the ghosts")


def ghost_pools(scene: Scene, valid: Job) -> None:
    scene.ghost_pool("ghost-without-hash", [], heartbeat_at=None)
    scene.ghost_pool("ghost-of-yesterday", [valid.to_json()], heartbeat_at="yesterday")
    scene.ghost_pool("ghost-forever", ["{held garbage"], heartbeat_at="inf")


def check_ghost_pools(scene: Scene) -> None:
    wait_until(lambda: not leftovers(scene.client, scene.namespace), timeout=5, what="the ghosts' jobs and counts")
    assert [record["payload"] for record in scene.dead_records()] == ["{held garbage"]
    assert {text(member) for member in scene.client.smembers(scene.key("worker_pools"))} == {scene.pool_id}
    for ghost in ("ghost-without-hash", "ghost-of-yesterday", "ghost-forever"):
        assert f"reaper: removed dead pool {ghost}" in scene.worker.log


def wrong_type_queue(scene: Scene, valid: Job) -> None:
    scene.client.set(scene.key("jobs:other"), "a string where a list belongs")


def wrong_type_sorted_sets(scene: Scene, valid: Job) -> None:
    scene.client.set(scene.key("retry"), "a string where a sorted set belongs")
    scene.client.rpush(scene.key("scheduled"), "a list where a sorted set belongs")


def wrong_type_worker_pools(scene: Scene, valid: Job) -> None:
    scene.client.delete(scene.key("worker_pools"))
    scene.client.set(scene.key("worker_pools"), "a string where a set belongs")


def check_wrongtype_logged(scene: Scene) -> None:
    wait_until(lambda: "WRONGTYPE" in scene.worker.log, timeout=5, what="the wrong type to be logged")


def nothing_more(scene: Scene) -> None:
    """The valid job ran and the worker lives: that is the whole expectation."""


def non_integer_lock(scene: Scene, valid: Job) -> None:
    scene.client.set(scene.key("jobs:work:lock"), "garbage")


def wrong_type_lock_info(scene: Scene, valid: Job) -> None:
    scene.client.set(scene.key("jobs:work:lock_info"), "a string where a hash belongs")


def garbage_own_lock_info_field(scene: Scene, valid: Job) -> None:
    scene.client.hset(scene.key("jobs:work:lock_info"), scene.pool_id, "garbage")


UNFILEABLE = "unfileable-garbage-payload"


def wrong_type_dead_set(scene: Scene, valid: Job) -> None:
    scene.client.set(scene.key("dead"), "a string where a sorted set belongs")
    scene.client.lpush(scene.key("jobs:work"), UNFILEABLE)


def check_unfileable_payload_kept(scene: Scene) -> None:
    assert scene.holds_anywhere(UNFILEABLE), "the payload was removed from its in-progress list and filed nowhere"


def wrong_type_pool_hash(scene: Scene, valid: Job) -> None:
    scene.client.sadd(scene.key("worker_pools"), "ghost-string")
    scene.client.set(scene.key("worker_pools:ghost-string"), "a string where a hash belongs")
    scene.ghost_pool("ghost-dead", [valid.to_json()], heartbeat_at="0")


def reaper_lock_without_expiry(scene: Scene, valid: Job) -> None:
    scene.client.set(scene.key("reaper_lock"), "garbage")
    scene.ghost_pool("ghost-dead", [valid.to_json()], heartbeat_at="0")


CASES = {
    "queue-payloads": Case(queue_payloads, check_queue_payloads),
    "retry-and-scheduled-members": Case(sorted_set_members, check_sorted_set_members),
    "dead-members": Case(dead_members, check_dead_members),
    "max-concurrency-value": Case(max_concurrency_value, nothing_more),
    "lock-info-of-unknown-pools": Case(lock_info_of_unknown_pools, check_lock_info_of_unknown_pools),
    "ghost-pools": Case(ghost_pools, check_ghost_pools, valid_in_queue=False),
    "wrong-type-queue": Case(wrong_type_queue, check_wrongtype_logged),
    "wrong-type-sorted-sets": Case(wrong_type_sorted_sets, check_wrongtype_logged),
    "wrong-type-worker-pools": Case(wrong_type_worker_pools, check_wrongtype_logged),
    "non-integer-lock": Case(non_integer_lock, nothing_more),
    "wrong-type-lock-info": Case(wrong_type_lock_info, nothing_more),
    "garbage-own-lock-info-field": Case(garbage_own_lock_info_field, nothing_more),
    "wrong-type-dead-set": Case(wrong_type_dead_set, check_unfileable_payload_kept, concurrency=1),
    "wrong-type-pool-hash": Case(wrong_type_pool_hash, nothing_more, valid_in_queue=False),
    "reaper-lock-without-expiry": Case(reaper_lock_without_expiry, nothing_more, valid_in_queue=False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_garbage_surfaces_and_the_worker_goes_on(
    name: str, fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str
) -> None:
    case = CASES[name]
    worker = fleet.start(redis_url, concurrency=case.concurrency)
    scene = Scene(redis_client, namespace, worker.pool_id(), worker)
    enqueuer = Enqueuer(namespace, redis_url)
    valid = Job(name="work", enqueued_at=int(time.time()))
    case.inject(scene, valid)
    if case.valid_in_queue:
        redis_client.lpush(scene.key("jobs:work"), valid.to_json())
        enqueuer.enqueue("work")  # and one through the Enqueuer, after the garbage

    try:
        wait_until(lambda: runs_by_job(redis_client, namespace)[valid.id], timeout=10, what="valid job")
        case.check(scene)
    finally:
        report(
            f"garbage[{name}]",
            valid_job_runs=runs_by_job(redis_client, namespace)[valid.id],
            dead=redis_client.zcard(scene.key("dead")) if redis_client.type(scene.key("dead")) == b"zset" else "n/a",
            error_lines=worker.log.count(" ERROR "),
            worker_alive=worker.alive,
        )
    assert worker.alive, worker.log


def test_a_garbage_lease_does_not_stop_time_outs(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str
) -> None:
    worker = fleet.start(redis_url, concurrency=2)
    worker.pool_id()
    redis_client.zadd(f"{namespace}:jobs:hang:leases", {b"\xff\xfe:garbage": 0, b"no-colon": 0})
    job = Enqueuer(namespace, redis_url).enqueue("hang", {"seconds": 60})  # its first run hangs
    try:
        wait_until(
            lambda: runs_by_job(redis_client, namespace, "started")[job.id] >= 2,
            timeout=HANG_TIMEOUT + 4,
            what="the hung job to be delivered again",
        )
    finally:
        report("garbage[lease-member-not-utf8]", runs=runs_by_job(redis_client, namespace, "started")[job.id])
    assert worker.alive


STARVATION_JOBS = 200


def test_a_corrupt_queue_does_not_starve_the_other_job_names(
    fleet: Fleet, redis_url: str, redis_client: redis.Redis, namespace: str
) -> None:
    worker = fleet.start(redis_url, concurrency=4)
    worker.pool_id()
    redis_client.set(f"{namespace}:jobs:other", "a string where a list belongs")
    started = time.monotonic()
    ids = [job.id for job in Enqueuer(namespace, redis_url).enqueue_many("work", [None] * STARVATION_JOBS)]
    try:
        wait_until(lambda: tally(redis_client, namespace, ids).lost == 0, timeout=5, what="every job")
    finally:
        report(
            "garbage[corrupt-queue-starvation]",
            **tally(redis_client, namespace, ids).figures(),
            elapsed=seconds_since(started),
            error_lines=worker.log.count(" ERROR "),
        )
    assert worker.alive
