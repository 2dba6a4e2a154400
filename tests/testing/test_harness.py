"""TestHarness.drain/advance and the listings: real scripts, middleware and acks, on a fake clock, in the test's
thread, with no Redis server."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from testing.conftest import START
from workq import Job, Retry, WorkerPool, WorkqError
from workq.testing import DrainResult, TestHarness
from workq.time_limits import lease_seconds


def test_drain_runs_due_jobs_through_the_middleware_chain_in_the_calling_thread(pool: WorkerPool) -> None:
    calls: list[tuple[str, str, threading.Thread]] = []

    @pool.middleware
    def outer(job: Job, next: Callable[[], None]) -> None:
        calls.append(("middleware", job.id, threading.current_thread()))
        next()

    @pool.job("greet")
    def greet(job: Job) -> None:
        calls.append((f"greet {job.arg_str('who')}", job.id, threading.current_thread()))

    threads_before = threading.active_count()
    with TestHarness(pool, start=START) as h:
        first, second = greet.enqueue(who="ada"), h.enqueuer.enqueue("greet", {"who": "bob"})
        assert [job.id for job in h.queued("greet")] == [first.id, second.id]
        result = h.drain()
        assert threading.active_count() == threads_before
        assert h.queued("greet") == [] and h.drain() == DrainResult()
        assert h.client.job_stats(START)[0].processed == 2
    assert [job.id for job in result.processed] == [first.id, second.id]
    assert result.failed == result.dead == result.rescheduled == []
    me = threading.current_thread()
    assert calls == [
        ("middleware", first.id, me),
        ("greet ada", first.id, me),
        ("middleware", second.id, me),
        ("greet bob", second.id, me),
    ]


def test_a_failure_retries_after_the_default_backoff_once_the_clock_is_advanced(pool: WorkerPool) -> None:
    attempts: list[int] = []

    @pool.job("flaky")
    def flaky(job: Job) -> None:
        attempts.append(job.fails)
        if job.fails == 0:
            raise ConnectionError("gateway timed out")

    with TestHarness(pool, start=START) as h:
        job = flaky.enqueue()
        first = h.drain()
        assert [(j.id, j.fails, j.last_err) for j in first.failed] == [
            (job.id, 1, "ConnectionError: gateway timed out")
        ]
        assert first.dead == [] and first.processed == []
        [retrying] = h.retrying()
        assert retrying.id == job.id and retrying.fails == 1
        assert 16 <= retrying.retry_at - START <= 75  # gocraft/work's curve: fails^4 + 15 + rand(30) * (fails + 1)
        h.advance(retrying.retry_at - START - 1)
        assert h.drain() == DrainResult()
        h.advance(1)
        assert [j.id for j in h.drain().processed] == [job.id]
        assert h.retrying() == [] and attempts == [0, 1]


def test_advance_without_seconds_jumps_to_the_next_due_job(pool: WorkerPool) -> None:
    @pool.job("flaky", max_fails=3)
    def flaky(job: Job) -> None:
        raise ValueError("always")

    with TestHarness(pool, start=START) as h:
        flaky.enqueue()
        runs = [h.drain()]
        for _ in range(2):
            h.advance()
            runs.append(h.drain())
        assert [len(run.failed) for run in runs] == [1, 1, 1]
        [dead] = h.dead()
        assert dead.fails == 3 and dead.died_at == h.now and "ValueError: always" in dead.last_err
        assert runs[-1].dead == runs[-1].failed and h.retrying() == []
        h.advance()  # nothing due anywhere: the clock stays
        assert h.now == dead.died_at


def test_retry_in_seconds_is_due_exactly_then(pool: WorkerPool) -> None:
    @pool.job("poll")
    def poll(job: Job) -> None:
        if job.arg_int("round") == 0:
            raise Retry(in_seconds=30)

    with TestHarness(pool, start=START) as h:
        job = poll.enqueue(round=0)
        result = h.drain()
        assert [j.id for j in result.rescheduled] == [job.id] and result.failed == []
        [scheduled] = h.scheduled("poll")
        assert (scheduled.id, scheduled.run_at, scheduled.fails) == (job.id, START + 30, 0)
        h.advance(29)
        assert h.drain() == DrainResult()
        h.advance(1)
        assert [j.id for j in h.drain().rescheduled] == [job.id]  # still round 0: rescheduled again


def test_enqueue_in_runs_once_the_clock_reaches_its_due_time(pool: WorkerPool) -> None:
    ran: list[float] = []
    pool.job("remind", lambda job: ran.append(job.enqueued_at))
    with TestHarness(pool, start=START) as h:
        scheduled = h.enqueuer.enqueue_in("remind", 3600, {"to": "ada"})
        assert [(j.id, j.run_at) for j in h.scheduled()] == [(scheduled.id, START + 3600)]
        h.advance(3599)
        assert h.drain() == DrainResult() and h.queued("remind") == []
        h.advance(1)
        assert [j.id for j in h.queued("remind")] == [scheduled.id]
        assert [j.id for j in h.drain().processed] == [scheduled.id]
    assert ran == [START + 3600]  # requeued with t = now, on the fake clock


@pytest.mark.parametrize(
    ("spec", "seconds", "ticks"),
    [("0 * * * * *", 60, 1), ("0 * * * * *", 1800, 30), ("*/10 * * * * *", 300, 30), ("@daily", 7 * 86400, 7)],
)
def test_cron_ticks_fall_due_as_the_clock_advances_and_none_is_lost(
    pool: WorkerPool, spec: str, seconds: int, ticks: int
) -> None:
    ran: list[str] = []
    pool.job("tick", lambda job: ran.append(job.id))
    pool.periodically_enqueue(spec, "tick")
    with TestHarness(pool, start=START) as h:
        assert h.drain() == DrainResult()
        h.advance(seconds)
        assert len(h.drain().processed) == ticks
        h.advance(seconds)
        assert len(h.drain().processed) == ticks
        coming = [job.run_at for job in h.scheduled("tick")]
        assert all(run_at > h.now for run_at in coming)  # the coming ticks wait in the scheduled set, as in production
        assert coming or spec == "@daily"
    assert len(set(ran)) == 2 * ticks


def test_the_production_scripts_run_pause_unique_and_max_concurrency_hold(pool: WorkerPool) -> None:
    seen: list[str] = []
    pool.job("report", lambda job: seen.append(job.id), max_concurrency=1)
    with TestHarness(pool, start=START) as h:
        h.client.pause("report")
        unique = h.enqueuer.enqueue_unique("report", {"day": 1})
        assert unique is not None and h.enqueuer.enqueue_unique("report", {"day": 1}) is None
        assert h.drain() == DrainResult()  # fetch.lua skips a paused queue
        h.client.unpause("report")
        assert [j.id for j in h.drain().processed] == [unique.id]
        assert h.enqueuer.enqueue_unique("report", {"day": 1}) is not None  # the lock went with the run
        assert h.redis.get(f"{h.client.keys.lock('report')}") == b"0"  # fetch/ack's per-name counter
    assert seen == [unique.id]


def test_a_job_retrying_itself_with_no_delay_is_reported_not_looped_forever(pool: WorkerPool) -> None:
    @pool.job("again")
    def again(job: Job) -> None:
        raise Retry(in_seconds=0)

    with TestHarness(pool, start=START) as h:
        again.enqueue()
        with pytest.raises(WorkqError, match="drain ran 50 jobs and more are due"):
            h.drain(max_runs=50)


def test_skip_dead_counts_a_failure_but_files_nothing(pool: WorkerPool) -> None:
    @pool.job("best_effort", max_fails=1, skip_dead=True)
    def best_effort(job: Job) -> None:
        raise RuntimeError("nope")

    with TestHarness(pool, start=START) as h:
        job = best_effort.enqueue()
        result = h.drain()
        assert [j.id for j in result.failed] == [job.id] and result.dead == []
        assert h.dead() == h.retrying() == []


def test_a_malformed_payload_is_buried_and_reported_dead(pool: WorkerPool) -> None:
    pool.job("x", lambda job: None)
    with TestHarness(pool, start=START) as h:
        h.redis.lpush(h.client.keys.queue("x"), b"{not json")
        result = h.drain()
        assert len(result.dead) == 1 and result.dead == result.failed
        assert "malformed job payload" in h.dead()[0].last_err


def test_keyboard_interrupt_in_a_handler_reaches_the_test_and_the_job_stays_queued(pool: WorkerPool) -> None:
    @pool.job("interrupted")
    def interrupted(job: Job) -> None:
        raise KeyboardInterrupt

    with TestHarness(pool, start=START) as h:
        job = interrupted.enqueue()
        with pytest.raises(KeyboardInterrupt):
            h.drain()
        assert [j.id for j in h.queued("interrupted")] == [job.id]


def test_the_fake_clock_is_the_one_every_part_reads(pool: WorkerPool) -> None:
    @pool.job("die", max_fails=1)
    def die(job: Job) -> None:
        raise ValueError("x")

    with TestHarness(pool, start=START) as h:
        h.advance(12.5)
        job = die.enqueue()
        assert job.enqueued_at == START + 12
        assert h.enqueuer.enqueue_in("die", 10).run_at == START + 23  # ceil(now + 10), as on Redis TIME
        h.drain()
        [dead] = h.dead()
        assert (dead.died_at, dead.failed_at) == (START + 12, START + 12)
        assert [queue.latency for queue in h.client.queues()] == [0]
        [beat] = h.client.worker_pool_heartbeats()
        assert beat.worker_pool_id == pool.pool_id and beat.heartbeat_at == START


def test_listing_and_running_need_an_open_harness(pool: WorkerPool) -> None:
    pool.job("x", lambda job: None)
    h = TestHarness(pool)
    with pytest.raises(WorkqError, match="not open"):
        h.drain()
    with pytest.raises(WorkqError, match="not open"):
        h.queued("x")
    with h, pytest.raises(ValueError, match="finite number of seconds"):
        h.advance(-1)


def test_scripts_take_now_from_the_fake_clock_not_redis_time(pool: WorkerPool) -> None:
    leases: list[list[tuple[bytes, float]]] = []
    h = TestHarness(pool, start=START)

    @pool.job("slow", timeout=30)
    def slow(job: Job) -> None:
        leases.append(h.redis.zrange(h.client.keys.leases("slow"), 0, -1, withscores=True))

    with h:
        h.advance(5)
        slow.enqueue()
        h.drain()
        assert h.redis.zcard(h.client.keys.leases("slow")) == 0  # ack.lua removed it
    [[(_, deadline)]] = leases
    assert deadline == START + 5 + lease_seconds(30)  # fetch.lua's lease deadline: its `now` argument, not Redis TIME
