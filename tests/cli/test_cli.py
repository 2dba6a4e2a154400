"""The `workq` command as users run it: real subprocesses against the real Redis."""

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

from support import wait_until
from workq import Enqueuer, Job

APP_DIR = Path(__file__).parent
UNREACHABLE = "redis://127.0.0.1:1/0"


def workq(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workq", *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=APP_DIR,
        env=env,
    )


class Worker:
    """A `workq worker worker_app:pool` subprocess whose log goes to a file the test can poll."""

    def __init__(self, redis_url: str, namespace: str, log_path: Path) -> None:
        self.log_path = log_path
        self._log_file = log_path.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workq",
                "worker",
                "worker_app:pool",
                "--redis-url",
                redis_url,
                "--namespace",
                namespace,
            ],
            cwd=APP_DIR,
            stderr=self._log_file,
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self._log_file.close()


@pytest.fixture
def worker(redis_url: str, namespace: str, tmp_path: Path) -> Iterator[Worker]:
    started = Worker(redis_url, namespace, tmp_path / "worker.log")
    yield started
    started.close()


def test_enqueue_prints_the_job_and_queues_it(redis_url: str, namespace: str, redis_client: redis.Redis) -> None:
    result = workq("enqueue", "quick", "--args", '{"user": 7}', "--redis-url", redis_url, "--namespace", namespace)
    assert result.returncode == 0, result.stderr
    printed = Job.from_json(result.stdout)
    assert printed.name == "quick" and printed.args == {"user": 7}
    assert redis_client.lrange(f"{namespace}:jobs:quick", 0, -1) == [result.stdout.strip().encode()]


def test_enqueue_reads_url_and_namespace_from_the_environment(
    redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    env = {**os.environ, "WORKQ_REDIS_URL": redis_url, "WORKQ_NAMESPACE": namespace}
    result = workq("enqueue", "quick", env=env)
    assert result.returncode == 0, result.stderr
    assert redis_client.llen(f"{namespace}:jobs:quick") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["enqueue", "quick", "--args", "{oops"], "--args is not valid JSON"),
        (["enqueue", "quick", "--args", "[1, 2]"], "--args must be a JSON object"),
        (["enqueue", "bad name"], "cannot hold ':', spaces"),
        (["worker", "no_colon"], "expected MODULE:ATTR"),
        (["worker", "no_such_module:pool"], "cannot import 'no_such_module'"),
        (["worker", "worker_app:nothing"], "has no attribute 'nothing'"),
        (["worker", "worker_app:blocking"], "not a workq.WorkerPool"),
        (["worker", "worker_app:pool", "--concurrency", "0"], "concurrency must be >= 1"),
        (["worker", "worker_app:pool", "--grace", "-1"], "--grace must be a number of seconds >= 0"),
        (["worker", "worker_app:pool", "--grace", "nan"], "--grace must be a number of seconds >= 0"),
        (["worker", "worker_app:pool", "--pin-cpus"], "--pin-cpus needs --processes 2 or more"),
    ],
)
def test_bad_usage_exits_2_with_one_line(argv: list[str], message: str) -> None:
    result = workq(*argv, "--redis-url", UNREACHABLE)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("workq: ")


@pytest.mark.parametrize("argv", [["enqueue", "quick"], ["worker", "worker_app:pool"]])
def test_unreachable_redis_is_one_clear_line_and_exit_1(argv: list[str]) -> None:
    result = workq(*argv, "--redis-url", UNREACHABLE)
    assert result.returncode == 1
    assert result.stderr.startswith("workq: cannot reach Redis at 127.0.0.1:1/0")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_worker_runs_enqueued_jobs(worker: Worker, redis_url: str, namespace: str, redis_client: redis.Redis) -> None:
    jobs = Enqueuer(namespace, redis_url).enqueue_many("quick", [{"n": n} for n in range(20)])
    for job in jobs:
        wait_until(
            lambda job=job: redis_client.get(f"{namespace}:test:finished:{job.id}"), timeout=30, what=f"job {job.id}"
        )
    assert all(redis_client.get(f"{namespace}:test:finished:{job.id}") == b"1" for job in jobs)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_job_finishes_that_job_and_exits_0(
    worker: Worker, signum: int, redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    enqueuer = Enqueuer(namespace, redis_url)
    job = enqueuer.enqueue("blocking")
    wait_until(lambda: redis_client.exists(f"{namespace}:test:started:{job.id}"), timeout=30, what="the job to start")
    worker.process.send_signal(signum)
    wait_until(lambda: f"received {signal.Signals(signum).name}" in worker.log, what="the signal to be handled")
    later = enqueuer.enqueue("quick")
    with pytest.raises(subprocess.TimeoutExpired):
        worker.process.wait(timeout=0.5)  # the blocked job holds the worker open
    redis_client.set(f"{namespace}:test:release", 1)
    assert worker.process.wait(timeout=20) == 0
    assert redis_client.get(f"{namespace}:test:finished:{job.id}") == b"1"
    assert not redis_client.exists(f"{namespace}:test:finished:{later.id}"), "a job was fetched after the signal"
    assert redis_client.llen(f"{namespace}:jobs:quick") == 1
    assert [key for key in redis_client.scan_iter(f"{namespace}:jobs:*:inprogress")] == []
    assert "starting" in worker.log and "stopped" in worker.log, worker.log


def test_worker_logs_start_and_stop_but_not_each_successful_job(
    worker: Worker, redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    job = Enqueuer(namespace, redis_url).enqueue("quick")
    wait_until(lambda: redis_client.get(f"{namespace}:test:finished:{job.id}"), timeout=30, what="the job to run")
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(timeout=20) == 0
    log = worker.log
    started = next(line for line in log.splitlines() if "starting" in line)
    assert f"namespace={namespace!r}" in started and "concurrency=2" in started and "jobs=blocking,quick" in started
    assert "stopped" in log
    assert job.id not in log


def test_enqueue_in_schedules_and_unique_skips_a_pending_duplicate(
    redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    common = ["--redis-url", redis_url, "--namespace", namespace]
    first = workq("enqueue", "quick", "--args", '{"n": 1}', "--in", "60", "--unique", *common)
    assert first.returncode == 0, first.stderr
    job = Job.from_json(first.stdout)
    assert job.unique and job.unique_key == f"{namespace}:unique:quick:" + '{"n":1}\n'
    [(member, run_at)] = redis_client.zrange(f"{namespace}:scheduled", 0, -1, withscores=True)
    assert member == first.stdout.strip().encode() and run_at >= job.enqueued_at + 60

    duplicate = workq("enqueue", "quick", "--args", '{"n": 1}', "--unique", *common)
    assert duplicate.returncode == 0 and duplicate.stdout == ""
    assert "already queued or scheduled" in duplicate.stderr
    assert redis_client.llen(f"{namespace}:jobs:quick") == 0


def test_a_corrupted_key_at_start_up_is_one_line_and_exit_1(
    redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    redis_client.set(f"{namespace}:worker_pools", "not a set")
    result = workq("worker", "worker_app:pool", "--redis-url", redis_url, "--namespace", namespace)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("workq: Redis refused:") and "WRONGTYPE" in last
    assert "Traceback" not in result.stderr


# gocraft/work's requeuer script (redis.go, redisLuaZremLpushCmd), verbatim: it moves one due job to its queue if
# the calling pool registers the name, and otherwise dead-letters it (gocraft/work issue #117).
GOCRAFT_REQUEUE = """
local res, j, queue
res = redis.call('zrangebyscore', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, 1)
if #res > 0 then
  j = cjson.decode(res[1])
  redis.call('zrem', KEYS[1], res[1])
  queue = ARGV[1] .. j['name']
  for _,v in pairs(KEYS) do
    if v == queue then
      j['t'] = tonumber(ARGV[2])
      redis.call('lpush', queue, cjson.encode(j))
      return 'ok'
    end
  end
  j['err'] = 'unknown job when requeueing'
  j['failed_at'] = tonumber(ARGV[2])
  redis.call('zadd', KEYS[2], ARGV[2], cjson.encode(j))
  return 'dead' -- put on dead queue
end
return nil
"""


def test_retry_dead_by_reason_rescues_the_jobs_a_gocraft_requeuer_dead_lettered(
    redis_url: str, namespace: str, redis_client: redis.Redis
) -> None:
    enqueuer = Enqueuer(namespace, redis_url)
    stranded = enqueuer.enqueue_in("python_only", 0, {"user": 7})
    ns = f"{namespace}:"
    # A Go pool that registers only go_only runs its requeuer over the due job.
    keys = (ns + "scheduled", ns + "dead", ns + "jobs:go_only")
    verdict = redis_client.eval(GOCRAFT_REQUEUE, len(keys), *keys, ns + "jobs:", int(time.time()) + 1)
    assert verdict == b"dead"
    failed = Job(name="python_only", last_err="ValueError: boom", fails=3, failed_at=5)
    redis_client.zadd(ns + "dead", {failed.to_json(): 5})
    common = ["--redis-url", redis_url, "--namespace", namespace]

    result = workq("retry-dead", "--reason", "unknown job", *common)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "requeued 1 dead job(s) whose error contains 'unknown job'"
    [queued] = redis_client.lrange(ns + "jobs:python_only", 0, -1)
    rescued = Job.from_json(queued)
    assert (rescued.id, rescued.args, rescued.last_err, rescued.fails) == (stranded.id, {"user": 7}, "", 0)
    assert redis_client.zrange(ns + "dead", 0, -1) == [failed.to_json().encode()]
    again = workq("retry-dead", "--reason", "unknown job", *common)
    assert again.stdout.strip() == "requeued 0 dead job(s) whose error contains 'unknown job'"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["retry-dead", "--reason", "unknown job", "5", "abc"], "either --reason TEXT or DIED_AT JOB_ID"),
        (["retry-dead", "--reason", ""], "--reason needs the text"),
    ],
)
def test_retry_dead_by_reason_refuses_ambiguous_usage(argv: list[str], message: str) -> None:
    result = workq(*argv, "--redis-url", UNREACHABLE)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("levels", [600, 5000])
def test_enqueue_refuses_args_nested_too_deep_with_one_line(levels: int) -> None:
    deep = '{"a":' + "[" * levels + "]" * levels + "}"
    result = workq("enqueue", "quick", "--args", deep, "--redis-url", UNREACHABLE)
    assert result.returncode == 2
    assert "args may nest at most 100 levels" in result.stderr and result.stderr.count("\n") == 1, result.stderr
