"""An ACL user limited to one namespace runs everything workq does — worker pools (with their reaper, requeuer,
time-outs and cron), enqueuers, the Client, the CLI and the dashboard — over TLS, with exactly the commands listed
in `WORKQ_COMMANDS`; a key or channel outside the namespace is refused with NOPERM.

The server is this module's own, so `INFO commandstats` after the run shows every command the run needed (commands
that workq's Lua scripts call count too, and are checked against the user's ACL like any other)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
import redis

from support import wait_until
from topologies.conftest import PoolMaker, WorkerStarter
from topologies.servers import TESTS_DIR, Certificates, RedisProcess, tls_server, tls_url
from workq import Client, Enqueuer, Job, Retry, ScheduledJob, WorkerPool
from workq.web import create_app

NAMESPACE = "billing"
USER, PASSWORD = "workq-billing", "s3cret-billing"
WORKQ_COMMANDS = [
    *("ping", "evalsha", "script|load"),  # the scripts' own commands are checked too: they are below
    *("get", "set", "del", "exists", "expire", "decr", "decrby", "type"),
    "time",  # one clock for every host: Redis's
    *("lpush", "rpush", "lpop", "lrem", "llen", "lindex", "lrange", "rpoplpush"),
    *("sadd", "srem", "smembers"),
    *("hset", "hget", "hmget", "hgetall", "hdel", "hincrby"),
    *("zadd", "zrem", "zscore", "zcard", "zrange", "zrevrange", "zrangebyscore", "zscan"),
    *("publish", "subscribe"),  # wake-ups of idle pools
    *("multi", "exec"),  # Client.delete_all_dead_jobs
]
"""Every command workq sends as an ACL user (workers, enqueuers, Client, CLI, dashboard) in every run."""
CONTENDED_COMMANDS = ["pttl", "pexpire"]
"""Sent only when a reaper finds another pool holding the reaper lock (it checks the lock expires): allowed, and
needed by a run where two pools' reapers meet, but not by every run."""
ACL_RULES = [
    "on",
    f">{PASSWORD}",
    "resetkeys",
    f"~{NAMESPACE}:*",
    "resetchannels",
    f"&{NAMESPACE}:wake",
    f"&{NAMESPACE}:cancel",
    "-@all",
    *(f"+{command}" for command in WORKQ_COMMANDS + CONTENDED_COMMANDS),
]


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory: pytest.TempPathFactory, certificates: Certificates) -> Iterator[RedisProcess]:
    """A TLS-only server of this module's own, with the namespace's user."""
    server = tls_server(tmp_path_factory.mktemp("acl"), certificates)
    try:
        server.start()
        server.wait_ready()
        with server.client() as admin:
            admin.acl_setuser(USER, reset=True)  # then the rules, verbatim, as an operator would write them
            admin.execute_command("ACL", "SETUSER", USER, *ACL_RULES)
        yield server
    finally:
        server.stop()


@pytest.fixture
def url(acl_server: RedisProcess, certificates: Certificates) -> str:
    return tls_url(acl_server, certificates, userinfo=f"{USER}:{PASSWORD}")


@pytest.fixture
def admin(acl_server: RedisProcess) -> Iterator[redis.Redis]:
    with acl_server.client() as client:
        yield client


def _seed_crash_leftovers(admin: redis.Redis) -> None:
    """What crashes leave behind, so the reaper and the lease keeper have work: a dead pool holding a `work` job,
    and a `leased` job whose lease ran out in a pool that vanished."""
    stranded = Job(name="work", args={"n": "stranded"}).to_json()
    admin.sadd(f"{NAMESPACE}:worker_pools", "deadpool")
    admin.hset(f"{NAMESPACE}:worker_pools:deadpool", mapping={"heartbeat_at": 1, "worker_ids": "deadworker"})
    admin.rpush(f"{NAMESPACE}:jobs:work:deadpool:inprogress", stranded)
    admin.hset(f"{NAMESPACE}:jobs:work:lock_info", "deadpool", 1)
    admin.set(f"{NAMESPACE}:jobs:work:lock", 1)
    admin.zadd(f"{NAMESPACE}:jobs:work:leases", {f"deadpool:0123456789abcdef:{stranded}": 2**40})  # reaped with it
    overrun = Job(name="leased", args={"n": "overrun"}).to_json()
    admin.rpush(f"{NAMESPACE}:jobs:leased:ghostpool:inprogress", overrun)
    admin.zadd(f"{NAMESPACE}:jobs:leased:leases", {f"ghostpool:0123456789abcdef:{overrun}": 1})


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workq", *args, "--redis-url", url, "--namespace", NAMESPACE],
        cwd=TESTS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_user_limited_to_the_namespace_runs_workers_enqueuers_client_cli_and_dashboard(
    url: str, admin: redis.Redis, make_pool: PoolMaker, start_worker: WorkerStarter
) -> None:
    _seed_crash_leftovers(admin)
    admin.acl_log_reset()
    admin.config_resetstat()

    ran = Ran()
    pool = make_pool(NAMESPACE, url, concurrency=4, heartbeat_interval=0.2, dead_after=2.0)
    _register_every_kind_of_job(pool, ran)
    enqueuer = Enqueuer(NAMESPACE, url)
    enqueuer.enqueue("work", {"n": "one"})
    enqueuer.enqueue_many("capped", [{"n": f"capped-{n}"} for n in range(5)])
    enqueuer.enqueue_in("later", 0, {"n": "later"})
    enqueuer.enqueue("leased", {"n": "leased"})
    enqueuer.enqueue_unique("work", {"n": "unique"})
    enqueuer.enqueue_unique_by_key("work", {"n": "by-key"}, key={"account": 7})
    tomorrow = enqueuer.enqueue_unique_in("work", 3600, {"n": "tomorrow"})
    declined = enqueuer.enqueue("declined", {"n": "declined"})
    assert tomorrow is not None

    pool.start()
    client = Client(NAMESPACE, url)
    expected = {"one", "unique", "by-key", "later", "leased", "stranded", "overrun", *(f"capped-{n}" for n in range(5))}
    wait_until(lambda: expected <= ran.labels(), timeout=20, what="every job, the reaped and the expired one included")
    wait_until(lambda: client.dead_jobs()[1] == 1, timeout=10, what="the declined job to die")
    wait_until(client.worker_observations, timeout=5, what="the observer to write")

    worker = start_worker("topologies.app:make_noop_pool", "--redis-url", url, "--namespace", NAMESPACE)
    wait_until(  # started: the wait below is for its jobs, not for an interpreter's start on a loaded machine
        lambda: any(beat.pid == worker.process.pid for beat in client.worker_pool_heartbeats()),
        timeout=30,
        what="the `workq worker` process to register",
    )
    enqueuer.enqueue_many("noop", [{} for _ in range(20)])
    wait_until(
        lambda: any(stats.job_name == "noop" and stats.processed == 20 for stats in client.job_stats()),
        timeout=20,
        what="the `workq worker` process to run 20 jobs",
    )
    assert worker.stop() == 0, worker.log

    _inspect_and_repair(client, declined, tomorrow)
    _dashboard_and_cli(client, url)
    pool.stop()

    used = _used_commands(admin)
    assert admin.acl_log() == [], "a command was refused"
    assert used - set(CONTENDED_COMMANDS) <= set(WORKQ_COMMANDS)
    assert used >= set(WORKQ_COMMANDS), f"listed but never needed: {sorted(set(WORKQ_COMMANDS) - used)}"


class Ran:
    """The `n` argument of every job the in-process handlers ran."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._labels: list[str] = []
        self._retried: set[str] = set()

    def record(self, job: Job) -> None:
        with self._lock:
            self._labels.append(str(job.args.get("n")))

    def labels(self) -> set[str]:
        with self._lock:
            return set(self._labels)

    def checking_in(self, job: Job) -> None:
        """Extends its lease (a job with a time-out) before it finishes."""
        job.checkin("halfway")
        self.record(job)

    def not_yet(self, job: Job) -> None:
        """Asks for a retry on the first run (through the scheduled set), runs on the second."""
        with self._lock:
            first = job.id not in self._retried
            self._retried.add(job.id)
        if first:
            raise Retry(in_seconds=0)
        self.record(job)


def _register_every_kind_of_job(pool: WorkerPool, ran: Ran) -> None:
    def fail(job: Job) -> None:
        raise RuntimeError("card declined")

    pool.job("work", ran.record)
    pool.job("leased", ran.checking_in, timeout=30, backoff=lambda job: 0)  # an expired lease is a failure
    pool.job("capped", ran.record, max_concurrency=1)
    pool.job("later", ran.not_yet)
    pool.job("declined", fail, max_fails=2, backoff=lambda job: 0)
    pool.periodically_enqueue("0 0 3 * * *", "work")


def _inspect_and_repair(client: Client, declined: Job, tomorrow: ScheduledJob) -> None:
    assert client.queues() and client.worker_pool_heartbeats() and client.job_stats()
    assert client.retry_jobs() == ([], 0)
    assert client.peek("work") == []
    client.pause("work")
    assert client.is_paused("work")
    client.unpause("work")
    client.delete_scheduled_job(tomorrow.run_at, tomorrow.id)
    dead = client.dead_jobs()[0]
    client.retry_dead_job(dead[0].died_at, declined.id)
    wait_until(lambda: client.dead_jobs()[1] == 1, timeout=10, what="the retried job to die again")
    assert client.retry_dead_jobs("declined", limit=1) == 1
    wait_until(lambda: client.dead_jobs()[1] == 1, timeout=10, what="the retried job to die once more")
    assert client.delete_all_dead_jobs() == 1


def _dashboard_and_cli(client: Client, url: str) -> None:
    dashboard = create_app(client, csrf_token="csrf").test_client()
    for page in ("/", "/workers", "/scheduled", "/retry", "/dead", "/api/queues", "/api/stats", "/api/busy_workers"):
        assert dashboard.get(page).status_code == 200, page
    assert dashboard.post("/api/pause/capped", headers={"X-CSRF-Token": "csrf"}).status_code == 200

    for command in (["workers"], ["dead"], ["unpause", "capped"], ["enqueue", "work"]):
        done = _cli(url, *command)
        assert done.returncode == 0, f"workq {' '.join(command)}: {done.stderr}"
    queues = {row["job_name"]: row for row in json.loads(_cli(url, "queues", "--json").stdout)}
    assert queues["capped"]["paused"] is False and queues["capped"]["processed_today"] == 5


def _used_commands(admin: redis.Redis) -> set[str]:
    """Commands that ran since the stats were reset (`calls` > 0, so refused attempts do not count)."""
    stats = admin.info("commandstats")
    return {name.removeprefix("cmdstat_") for name, fields in stats.items() if int(fields["calls"]) > 0} - {
        "auth",  # AUTH and HELLO are allowed to every user
        "hello",
        "config|resetstat",  # the admin's, counted once it returned
        "info",
    }


def test_keys_and_channels_outside_the_namespace_are_refused(url: str) -> None:
    with redis.Redis.from_url(url) as user:
        assert user.set(f"{NAMESPACE}:scratch", 1)
        with pytest.raises(redis.exceptions.NoPermissionError, match="no permissions"):
            user.get("other:key")
        with pytest.raises(redis.exceptions.NoPermissionError, match="no permissions"):
            user.publish("other:wake", "x")
        with pytest.raises(redis.exceptions.NoPermissionError, match="no permissions"):
            user.flushall()
        user.delete(f"{NAMESPACE}:scratch")
    with pytest.raises(redis.exceptions.NoPermissionError, match="no permissions"):
        Enqueuer("other", url).enqueue("work")
