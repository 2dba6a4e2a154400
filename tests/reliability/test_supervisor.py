"""`workq worker --processes N` never leaves children behind: killed with SIGKILL, its children stop gracefully and
deregister; a SIGTERM that lands while it respawns a child stops that child too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from reliability.harness import APP, DEAD_AFTER, HEARTBEAT_INTERVAL, TESTS_DIR, report, runs_by_job, seconds_since
from support import wait_until
from workq import Client, Enqueuer

GRACE = 1.0
STOPPED_WITHIN = GRACE + 10.0
"""A child stops gracefully: the grace period for its running jobs, deregistering, and slack for a busy machine."""
SIGNALLED_SUPERVISOR = TESTS_DIR / "reliability" / "signalled_supervisor.py"


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for whoever adopted it to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


class Supervised:
    """A `workq worker reliability.app:make_pool --processes 2` process tree; whatever still runs of it is killed
    at teardown (the supervisor and every child pid it reported)."""

    def __init__(self, redis_url: str, namespace: str, log_path: Path, *, launcher: list[str], env: dict[str, str]):
        self.redis_url = redis_url
        self.namespace = namespace
        self.log_path = log_path
        self._log = log_path.open("w")
        argv = [*launcher, "worker", APP, "--processes", "2", "--concurrency", "2", "--grace", str(GRACE)]
        argv += ["--redis-url", redis_url, "--namespace", namespace]
        env = {
            **os.environ,
            "WORKQ_TEST_HEARTBEAT_INTERVAL": str(HEARTBEAT_INTERVAL),
            "WORKQ_TEST_DEAD_AFTER": str(DEAD_AFTER),
            **env,
        }
        self.process = subprocess.Popen(argv, cwd=TESTS_DIR, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.children: set[int] = set()

    def registered_children(self, count: int) -> set[int]:
        """The pids of the first `count` child pools, once their heartbeats are in Redis."""
        client = Client(self.namespace, self.redis_url)

        def registered() -> set[int]:
            assert self.process.poll() is None, f"the supervisor exited early:\n{self.log}"
            pids = {beat.pid for beat in client.worker_pool_heartbeats()} - {self.process.pid}
            return pids if len(pids) >= count else set()

        self.children |= wait_until(registered, timeout=30, what=f"{count} child pools to register")
        return self.children

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        for pid in self.children:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self._log.close()


@pytest.fixture
def supervised(
    redis_url: str, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[list[Supervised]]:
    started: list[Supervised] = []
    yield started
    for tree in started:
        tree.close()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for tree in started:
            print(f"--- {tree.log_path.name}\n{tree.log[-20000:]}")


def test_children_stop_gracefully_and_deregister_when_their_supervisor_is_killed(
    supervised: list[Supervised], redis_url: str, namespace: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    tree = Supervised(
        redis_url, namespace, tmp_path / "supervisor.log", launcher=[sys.executable, "-m", "workq"], env={}
    )
    supervised.append(tree)
    children = tree.registered_children(2)
    held = Enqueuer(namespace, redis_url).enqueue("hold", {"seconds": 60})
    wait_until(lambda: runs_by_job(redis_client, namespace, "started")[held.id], what="the held job to start")

    tree.process.kill()
    killed_at = time.monotonic()
    wait_until(lambda: not any(running(pid) for pid in children), timeout=STOPPED_WITHIN, what="the children to exit")
    stopped_in = seconds_since(killed_at)

    client = Client(namespace, redis_url)
    report("supervisor kill -9", children=len(children), stopped_s=stopped_in, grace_s=GRACE)
    assert client.worker_pool_heartbeats() == [], "each child deregistered its pool"
    assert [job.id for job in client.peek("hold")] == [held.id], "the running job went back to its queue"
    assert client.worker_observations() == []


def test_a_stop_signal_landing_as_a_child_is_respawned_stops_that_child_too(
    supervised: list[Supervised], redis_url: str, namespace: str, tmp_path: Path
) -> None:
    pids_file = tmp_path / "children.pids"
    tree = Supervised(
        redis_url,
        namespace,
        tmp_path / "supervisor.log",
        launcher=[sys.executable, str(SIGNALLED_SUPERVISOR)],
        env={"WORKQ_TEST_SIGNAL_AT_SPAWN": "3", "WORKQ_TEST_PIDS_FILE": str(pids_file)},
    )
    supervised.append(tree)
    victim = min(tree.registered_children(2))
    os.kill(victim, signal.SIGKILL)  # the supervisor respawns it a second later, and is signalled as it does
    killed_at = time.monotonic()

    wait_until(lambda: tree.process.poll() is not None, timeout=STOPPED_WITHIN + 5, what="the supervisor to exit")
    stopped_in = seconds_since(killed_at)
    spawned = {int(line) for line in pids_file.read_text().split()}
    tree.children |= spawned
    report(
        "supervisor SIGTERM during respawn",
        spawned=len(spawned),
        exit_status=tree.process.returncode,
        stopped_s=stopped_in,
    )
    assert len(spawned) == 3, "two children and one respawned"
    wait_until(lambda: not any(running(pid) for pid in spawned), timeout=5, what="every child to have exited")
    assert tree.process.returncode == 0, "its children at the end, the respawned one too, stopped as asked"
    live = {beat.pid for beat in Client(namespace, redis_url).worker_pool_heartbeats()}
    assert live <= {victim}, "every child but the killed one deregistered"
