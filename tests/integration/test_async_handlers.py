"""`async def` handlers on real Redis: they run on one event loop per pool, at most `async_concurrency` at once,
and every outcome (failure, retry, dead, Retry, unique release, observations, checkin, max_concurrency, pause,
time limit, cancel, stop with and without grace) is the same as for sync handlers. Before issue 14 an async
handler was counted as processed and its body never ran."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable

import pytest

from integration.namespace_view import NamespaceView
from integration.pool_factory import PoolFactory
from support import wait_until
from workq import Client, Enqueuer, Job, Retry, WorkerPool, async_runner, dispatch_loop
from workq import time_limits as time_limits_module


async def until(event: threading.Event) -> None:
    """Await a threading.Event set by the test, without blocking the loop (a poll, as wait_until does)."""
    while not event.is_set():
        await asyncio.sleep(0.005)


class Tally:
    """Jobs started and finished by async handlers, the peak running at once, and where they ran."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.started: list[str] = []
        self.finished: list[str] = []
        self.cancelled: list[str] = []
        self.loops: set[int] = set()
        self.threads: set[int] = set()

    def start(self, job: Job) -> None:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.started.append(job.id)
            self.loops.add(id(asyncio.get_running_loop()))
            self.threads.add(threading.get_ident())

    def end(self, job: Job, finished: bool) -> None:
        with self.lock:
            self.running -= 1
            (self.finished if finished else self.cancelled).append(job.id)

    async def hold(self, job: Job, release: threading.Event) -> None:
        self.start(job)
        try:
            await until(release)
        except asyncio.CancelledError:
            self.end(job, finished=False)
            raise
        self.end(job, finished=True)


def test_async_handlers_run_on_one_loop_at_most_async_concurrency_at_once(
    make_pool: PoolFactory, enqueuer: Enqueuer, release: threading.Event
) -> None:
    tally = Tally()
    pool = make_pool(concurrency=2, async_concurrency=5)

    @pool.job("io")
    async def io(job: Job) -> None:
        await tally.hold(job, release)

    enqueuer.enqueue_many("io", [{"n": n} for n in range(20)])
    pool.start()
    wait_until(lambda: tally.running == 5, what="5 async jobs running at once")
    release.set()
    pool.drain(timeout=20)

    assert len(tally.finished) == 20 and len(set(tally.finished)) == 20
    assert tally.peak == 5
    assert len(tally.loops) == 1 and len(tally.threads) == 1


def test_async_and_sync_handlers_run_side_by_side(
    make_pool: PoolFactory, enqueuer: Enqueuer, release: threading.Event
) -> None:
    """Async jobs do not take the thread workers: with every async slot busy, sync jobs still run."""
    tally = Tally()
    sync_done: list[str] = []
    pool = make_pool(concurrency=1, async_concurrency=3)

    @pool.job("io")
    async def io(job: Job) -> None:
        await tally.hold(job, release)

    pool.job("cpu", lambda job: sync_done.append(job.id))
    enqueuer.enqueue_many("io", [None] * 3)
    enqueuer.enqueue_many("cpu", [None] * 5)
    pool.start()
    wait_until(lambda: tally.running == 3 and len(sync_done) == 5, what="3 async jobs held, 5 sync jobs done")
    release.set()
    pool.drain(timeout=20)
    assert len(tally.finished) == 3


def test_a_failing_async_handler_retries_then_dies(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    pool = make_pool(async_concurrency=2)
    runs: list[int] = []

    @pool.job("flaky", max_fails=2, backoff=lambda job: 0)
    async def flaky(job: Job) -> None:
        runs.append(job.fails)
        await asyncio.sleep(0)
        raise ValueError(f"boom {job.fails}")

    enqueuer.enqueue("flaky")
    pool.start()
    dead = wait_until(view.dead, timeout=20, what="the job in the dead set")

    assert runs == [0, 1]
    [filed] = dead
    assert filed.fields["fails"] == 2
    assert "ValueError: boom 1" in filed.fields["err"]
    assert view.retry() == []


def test_an_async_handler_out_of_retries_with_skip_dead_is_discarded(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, redis_client: object
) -> None:
    pool = make_pool(async_concurrency=2)
    runs: list[str] = []

    @pool.job("doomed", max_fails=1, skip_dead=True)
    async def doomed(job: Job) -> None:
        runs.append(job.id)
        raise RuntimeError("no")

    enqueuer.enqueue("doomed")
    pool.start()
    pool.drain(timeout=10)
    assert len(runs) == 1
    assert view.dead() == [] and view.retry() == []


def test_retry_from_an_async_handler_reschedules_without_a_failure(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    pool = make_pool(async_concurrency=2)

    @pool.job("later")
    async def later(job: Job) -> None:
        raise Retry(in_seconds=300)

    enqueuer.enqueue("later")
    pool.start()
    [scheduled] = wait_until(view.scheduled, what="the job rescheduled")
    pool.drain(timeout=10)
    assert scheduled.fields.get("fails", 0) == 0
    assert view.retry() == [] and view.dead() == []


def test_a_unique_async_job_releases_its_lock_as_it_starts(
    make_pool: PoolFactory, enqueuer: Enqueuer, release: threading.Event
) -> None:
    tally = Tally()
    pool = make_pool(async_concurrency=2)

    @pool.job("once")
    async def once(job: Job) -> None:
        await tally.hold(job, release)

    assert enqueuer.enqueue_unique("once", {"k": 1}) is not None
    assert enqueuer.enqueue_unique("once", {"k": 1}) is None
    pool.start()
    wait_until(lambda: tally.running == 1, what="the unique job running")
    assert enqueuer.enqueue_unique("once", {"k": 1}) is not None, "the lock is released once the run started"
    release.set()
    pool.drain(timeout=10)
    assert len(tally.finished) == 2


def test_a_running_async_job_is_observed_with_its_checkin(
    make_pool: PoolFactory, enqueuer: Enqueuer, namespace: str, redis_url: str, release: threading.Event
) -> None:
    pool = make_pool(async_concurrency=4)

    @pool.job("watched")
    async def watched(job: Job) -> None:
        job.checkin("half way")
        await until(release)

    enqueued = enqueuer.enqueue("watched", {"a": 1})
    pool.start()
    client = Client(namespace, redis_url)

    def busy() -> list[object]:
        return [o for o in client.worker_observations() if o.is_busy and o.checkin == "half way"]

    [observation] = wait_until(busy, what="the async job observed with its checkin")
    assert (observation.job_name, observation.job_id) == ("watched", enqueued.id)
    [heartbeat] = client.worker_pool_heartbeats()
    assert observation.worker_id in heartbeat.worker_ids
    assert len(heartbeat.worker_ids) == 4, "one per async slot (no sync handler: no thread workers)"
    release.set()
    pool.drain(timeout=10)
    wait_until(lambda: not any(o.is_busy for o in client.worker_observations()), what="the worker idle again")


def test_max_concurrency_caps_async_jobs_across_slots(
    make_pool: PoolFactory, enqueuer: Enqueuer, release: threading.Event
) -> None:
    tally = Tally()
    pool = make_pool(async_concurrency=10)

    @pool.job("capped", max_concurrency=2)
    async def capped(job: Job) -> None:
        tally.start(job)
        await asyncio.sleep(0.02)  # simulated I/O, so that jobs would overlap without the cap
        tally.end(job, finished=True)

    enqueuer.enqueue_many("capped", [None] * 30)
    pool.start()
    pool.drain(timeout=20)
    assert len(tally.finished) == 30
    assert tally.peak == 2


def test_a_paused_async_job_name_is_not_fetched_until_unpaused(
    make_pool: PoolFactory, enqueuer: Enqueuer, namespace: str, redis_url: str, view: NamespaceView
) -> None:
    done: list[str] = []
    pool = make_pool(async_concurrency=4)

    @pool.job("held")
    async def held(job: Job) -> None:
        done.append(job.name)

    @pool.job("free")
    async def free(job: Job) -> None:
        done.append(job.name)

    client = Client(namespace, redis_url)
    client.pause("held")
    enqueuer.enqueue("held")
    enqueuer.enqueue_many("free", [None] * 5)
    pool.start()
    wait_until(lambda: len(done) == 5, what="the unpaused jobs")
    assert set(done) == {"free"} and len(view.queued("held")) == 1
    client.unpause("held")
    wait_until(lambda: "held" in done, what="the held job after unpause")


def test_stop_waits_for_running_async_jobs(make_pool: PoolFactory, enqueuer: Enqueuer) -> None:
    tally = Tally()
    pool = make_pool(async_concurrency=4)
    gate = threading.Event()

    @pool.job("slow")
    async def slow(job: Job) -> None:
        tally.start(job)
        gate.set()
        await asyncio.sleep(0.3)  # the work stop() must wait for
        tally.end(job, finished=True)

    enqueuer.enqueue("slow")
    pool.start()
    gate.wait(10)
    pool.stop()
    assert len(tally.finished) == 1 and tally.cancelled == []


def test_stop_with_grace_cancels_async_tasks_and_hands_their_jobs_back(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, release: threading.Event
) -> None:
    tally = Tally()
    pool = make_pool(async_concurrency=4)

    @pool.job("stuck")
    async def stuck(job: Job) -> None:
        await tally.hold(job, release)

    jobs = enqueuer.enqueue_many("stuck", [{"n": n} for n in range(3)])
    pool.start()
    wait_until(lambda: tally.running == 3, what="3 jobs running")
    pool.stop(grace=0.2)

    assert sorted(tally.cancelled) == sorted(job.id for job in jobs), "each task was cancelled"
    assert sorted(view.queued("stuck")) == sorted(job.to_json().encode() for job in jobs)
    assert view.in_progress("stuck", pool.pool_id) == []

    second = make_pool(async_concurrency=4)
    again: list[str] = []

    @second.job("stuck")
    async def rerun(job: Job) -> None:
        again.append(job.id)

    second.start()
    second.drain(timeout=10)
    assert sorted(again) == sorted(job.id for job in jobs)


def hold_one_and_fetch_one_ahead(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, release: threading.Event
) -> tuple[WorkerPool, Tally, Job, Job]:
    """A started pool with one async slot: one job runs (held until `release`), the other was fetched ahead and
    waits on the loop for the slot. Returns the pool, its tally, the running job and the waiting one."""
    tally = Tally()
    pool = make_pool(async_concurrency=1)

    @pool.job("held", max_fails=5)
    async def held(job: Job) -> None:
        await tally.hold(job, release)

    jobs = enqueuer.enqueue_many("held", [{"n": 0}, {"n": 1}])
    pool.start()
    wait_until(lambda: tally.running == 1 and view.queued("held") == [], what="one job running, one fetched ahead")
    [running] = [job for job in jobs if job.id in tally.started]
    [waiting] = [job for job in jobs if job is not running]
    return pool, tally, running, waiting


def test_a_job_fetched_ahead_is_handed_back_unstarted_when_the_pool_stops(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, release: threading.Event
) -> None:
    pool, tally, running, waiting = hold_one_and_fetch_one_ahead(make_pool, enqueuer, view, release)
    stopping = threading.Thread(target=pool.stop, name="stop")
    stopping.start()
    wait_until(lambda: view.queued("held") == [waiting.to_json().encode()], what="the waiting job handed back")
    assert tally.running == 1 and stopping.is_alive(), "stop() still waits for the running job"
    release.set()
    stopping.join(10)
    assert not stopping.is_alive()
    assert tally.started == [running.id] and tally.finished == [running.id], "the waiting job never started"
    assert view.in_progress("held", pool.pool_id) == [] and view.dead() == []


def test_a_cancel_ends_a_job_fetched_ahead_before_it_starts(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, release: threading.Event
) -> None:
    pool, tally, running, waiting = hold_one_and_fetch_one_ahead(make_pool, enqueuer, view, release)
    assert pool._running is not None and pool._running.cancel_running(waiting.id)
    [dead] = wait_until(view.dead, what="the cancelled waiting job in the dead set")
    assert dead.fields["id"] == waiting.id and "cancelled" in dead.fields["err"]
    release.set()
    pool.drain(timeout=10)
    assert tally.started == [running.id] and tally.finished == [running.id], "the cancelled job never started"
    assert view.retry() == [] and view.queued("held") == []


def test_an_async_job_past_its_time_limit_is_cancelled_and_fails_timed_out(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, release: threading.Event
) -> None:
    tally = Tally()
    pool = make_pool(async_concurrency=2)

    @pool.job("endless", timeout=1, max_fails=1)
    async def endless(job: Job) -> None:
        await tally.hold(job, release)

    enqueuer.enqueue("endless")
    pool.start()
    [dead] = wait_until(view.dead, timeout=20, what="the timed-out job in the dead set")
    assert "timed out" in dead.fields["err"] and dead.fields["fails"] == 1
    assert tally.cancelled and tally.finished == []


def test_checkin_pushes_an_async_time_limit_back(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    finished: list[str] = []
    pool = make_pool(async_concurrency=2)

    @pool.job("long", timeout=1, max_fails=1)
    async def long(job: Job) -> None:
        for _ in range(8):  # 2 s of work, twice the limit, checking in every 0.25 s
            await asyncio.sleep(0.25)
            job.checkin("working")
        finished.append(job.id)

    enqueuer.enqueue("long")
    pool.start()
    pool.drain(timeout=20)
    assert len(finished) == 1
    assert view.dead() == [] and view.retry() == []


def test_a_cancelled_running_async_job_is_filed_dead_as_cancelled(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, release: threading.Event
) -> None:
    tally = Tally()
    pool = make_pool(async_concurrency=2)

    @pool.job("victim", max_fails=5)
    async def victim(job: Job) -> None:
        await tally.hold(job, release)

    enqueued = enqueuer.enqueue("victim")
    pool.start()
    wait_until(lambda: tally.running == 1, what="the job running")
    assert pool._running is not None and pool._running.cancel_running(enqueued.id)
    [dead] = wait_until(view.dead, what="the cancelled job in the dead set")
    assert "cancelled" in dead.fields["err"]
    assert view.retry() == [] and tally.cancelled == [enqueued.id]


@pytest.mark.parametrize("raised", [KeyboardInterrupt, SystemExit])
def test_an_async_handler_raising_keyboard_interrupt_or_system_exit_hands_its_job_back_and_stops_the_pool(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, raised: type[BaseException]
) -> None:
    pool = make_pool(async_concurrency=2)

    @pool.job("quit")
    async def quit_(job: Job) -> None:
        raise raised()

    enqueued = enqueuer.enqueue("quit")
    pool.start()
    assert pool.wait_for_stop_request(10)
    pool.stop()
    assert view.queued("quit") == [enqueued.to_json().encode()]
    assert view.dead() == [] and view.retry() == []


def test_a_job_fetched_ahead_does_not_start_after_a_handler_stops_the_pool(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    """As a thread worker stops at once: the job waiting on the loop is handed back, not started in the slot the
    interrupting run freed."""
    pool = make_pool(async_concurrency=1)
    ran_after: list[str] = []

    @pool.job("quit")
    async def quit_(job: Job) -> None:
        if not ran_after and job.arg_int("n") == 0:
            raise KeyboardInterrupt
        ran_after.append(job.id)

    jobs = enqueuer.enqueue_many("quit", [{"n": 0}, {"n": 1}])
    pool.start()
    assert pool.wait_for_stop_request(10)
    pool.stop()
    assert ran_after == []
    assert sorted(view.queued("quit")) == sorted(job.to_json().encode() for job in jobs)


def _recorder(log: list[str], label: str) -> tuple[Callable[..., object], Callable[..., object]]:
    def sync_mw(job: Job, next: Callable[[], None]) -> None:
        log.append(f"{label} sync before")
        try:
            next()
        except ValueError as exc:
            log.append(f"{label} sync saw {exc}")
            raise
        finally:
            log.append(f"{label} sync after")

    async def async_mw(job: Job, next: Callable[[], object]) -> None:
        log.append(f"{label} async before")
        try:
            await next()  # type: ignore[misc]
        except ValueError as exc:
            log.append(f"{label} async saw {exc}")
            raise
        finally:
            log.append(f"{label} async after")

    return sync_mw, async_mw


@pytest.mark.parametrize("handler_kind", ["async", "sync"])
def test_sync_and_async_middleware_compose_in_registration_order_around_either_handler(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, handler_kind: str
) -> None:
    log: list[str] = []
    pool = make_pool(async_concurrency=2)
    first_sync, first_async = _recorder(log, "1")
    second_sync, second_async = _recorder(log, "2")
    for middleware in (first_sync, first_async, second_sync, second_async):
        pool.middleware(middleware)  # type: ignore[arg-type]

    def body(job: Job) -> None:
        log.append("handler")
        if job.arg_bool("fail"):
            raise ValueError("bad")

    async def async_handler(job: Job) -> None:
        body(job)

    pool.job("layered", async_handler if handler_kind == "async" else body, max_fails=1)
    enqueuer.enqueue("layered", {"fail": False})
    pool.start()
    pool.drain(timeout=10)
    order = ["1 sync", "1 async", "2 sync", "2 async"]
    assert log == [f"{m} before" for m in order] + ["handler"] + [f"{m} after" for m in reversed(order)]

    log.clear()
    enqueuer.enqueue("layered", {"fail": True})
    [dead] = wait_until(view.dead, what="the failed job")
    assert "ValueError: bad" in dead.fields["err"]
    assert log[4:] == ["handler"] + [f"{m} {what}" for m in reversed(order) for what in ("saw bad", "after")]


def test_a_sync_middleware_around_a_timed_out_async_handler_sees_the_cancel(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, release: threading.Event
) -> None:
    """The sync middleware runs in a helper thread; cancelling the task cancels the handler under it, and its
    `next()` raises CancelledError so its clean-up runs."""
    seen: list[str] = []
    pool = make_pool(async_concurrency=2)

    @pool.middleware
    def guard(job: Job, next: Callable[[], None]) -> None:
        try:
            next()
        except BaseException as exc:
            seen.append(type(exc).__name__)
            raise

    @pool.job("endless", timeout=1, max_fails=1)
    async def endless(job: Job) -> None:
        await until(release)

    enqueuer.enqueue("endless")
    pool.start()
    [dead] = wait_until(view.dead, timeout=20, what="the timed-out job")
    assert "timed out" in dead.fields["err"]
    wait_until(lambda: seen == ["CancelledError"], what="the sync middleware seeing the cancel")


def test_a_sync_middleware_returning_a_coroutine_fails_the_run(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    ran: list[str] = []
    pool = make_pool(async_concurrency=2)

    async def audit(job: Job, next: Callable[[], object]) -> None:
        ran.append("audit")

    pool.middleware(lambda job, next: audit(job, next))  # noqa: PLW0108 - a plain function returning a coroutine

    @pool.job("audited", max_fails=1)
    async def audited(job: Job) -> None:
        ran.append("handler")

    enqueuer.enqueue("audited")
    pool.start()
    [dead] = wait_until(view.dead, what="the run failed loudly")
    assert "TypeError" in dead.fields["err"] and "async def" in dead.fields["err"]
    assert ran == []


def test_a_plain_handler_returning_a_coroutine_fails_the_run(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView
) -> None:
    async def work(job: Job) -> None:
        raise AssertionError("never awaited by a thread worker")

    pool = make_pool()
    pool.job("wrapped", lambda job: work(job), max_fails=1)  # noqa: PLW0108 - plain, returns a coroutine
    enqueuer.enqueue("wrapped")
    pool.start()
    [dead] = wait_until(view.dead, what="the run failed loudly")
    assert "TypeError" in dead.fields["err"]


def test_partials_and_callable_objects_with_async_call_run_on_the_loop(
    make_pool: PoolFactory, enqueuer: Enqueuer
) -> None:
    loops: list[str] = []

    async def tagged(tag: str, job: Job) -> None:
        asyncio.get_running_loop()
        loops.append(tag)

    class Handler:
        async def __call__(self, job: Job) -> None:
            asyncio.get_running_loop()
            loops.append("object")

    pool: WorkerPool = make_pool(async_concurrency=2)
    pool.job("partial", functools.partial(tagged, "partial"))
    pool.job("object", Handler())
    enqueuer.enqueue("partial")
    enqueuer.enqueue("object")
    pool.start()
    pool.drain(timeout=10)
    assert sorted(loops) == ["object", "partial"]


def test_an_idle_async_pool_is_woken_by_an_enqueue_not_by_its_poll(
    make_pool: PoolFactory, enqueuer: Enqueuer, view: NamespaceView, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The enqueue's wake-up reaches the async dispatcher: with the idle poll an hour away, the job still runs."""
    monkeypatch.setattr(dispatch_loop, "IDLE_POLL", 3600.0)
    done = threading.Event()
    pool = make_pool(async_concurrency=4)

    @pool.job("prompt")
    async def prompt(job: Job) -> None:
        done.set()

    pool.start()
    wait_until(lambda: view.client.exists(view.key("jobs:prompt:waiting")), what="the pool idle, waiting")
    enqueuer.enqueue("prompt")
    assert done.wait(10), "the idle async pool was not woken by the enqueue"


def test_a_job_fetched_ahead_that_waits_past_its_lease_margin_goes_back_for_a_fresh_lease(
    make_pool: PoolFactory,
    enqueuer: Enqueuer,
    view: NamespaceView,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A job with a time limit, fetched ahead while every slot is busy, holds a lease taken at its fetch: one that
    waited longer than the lease's margin is not started on what is left of it (the lease keeper could take the job
    while it runs: two runs at once), but handed back and fetched again with a fresh lease. It runs once."""
    monkeypatch.setattr(async_runner, "LEASE_MARGIN", 0.05)
    caplog.set_level(logging.INFO, logger="workq")
    release = threading.Event()
    runs: list[str] = []
    pool = make_pool(async_concurrency=1)  # one slot, one job fetched ahead

    @pool.job("slow")
    async def slow(job: Job) -> None:
        await until(release)

    @pool.job("timed", timeout=30)
    async def timed(job: Job) -> None:
        runs.append(job.id)

    enqueuer.enqueue("slow")
    pool.start()
    wait_until(lambda: view.client.llen(view.key(f"jobs:slow:{pool.pool_id}:inprogress")), what="slow to be fetched")
    job = enqueuer.enqueue("timed")
    wait_until(
        lambda: view.client.llen(view.key(f"jobs:timed:{pool.pool_id}:inprogress")), what="timed to be fetched ahead"
    )
    time.sleep(0.1)  # the behaviour under test: the job fetched ahead waits past the (patched) margin
    release.set()
    pool.drain(timeout=10)
    assert runs == [job.id]
    assert any("back to its queue, for a fresh lease" in record.getMessage() for record in caplog.records)


def test_jobs_of_one_slot_start_in_queue_order(make_pool: PoolFactory, enqueuer: Enqueuer) -> None:
    """Jobs fetched ahead wait for the slot in the order Redis gave them out, though two dispatch threads fetch."""
    pool = make_pool(async_concurrency=1)
    order: list[int] = []

    @pool.job("step")
    async def step(job: Job) -> None:
        order.append(job.arg_int("n"))
        await asyncio.sleep(0)

    enqueuer.enqueue_many("step", [{"n": n} for n in range(60)])
    pool.start()
    pool.drain(timeout=20)
    assert order == list(range(60))


@pytest.mark.parametrize("stubbornness", ["swallows the cancellation", "blocks the loop"])
def test_an_async_run_that_does_not_end_when_cancelled_is_abandoned_and_counted_while_it_keeps_its_slot(
    make_pool: PoolFactory,
    enqueuer: Enqueuer,
    view: NamespaceView,
    *,
    release: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
    stubbornness: str,
) -> None:
    """As a thread worker's run stuck in a C call: its outcome is filed without it `ABANDON_AFTER` s after the
    cancel, the pool counts it stuck, and its slot stays busy until it ends (then its late outcome is dropped)."""
    monkeypatch.setattr(time_limits_module, "ABANDON_AFTER", 0.5)
    events: list[str] = []
    pool = make_pool(async_concurrency=1)

    @pool.job("stubborn", timeout=1, max_fails=1)
    async def stubborn(job: Job) -> None:
        events.append("stubborn started")
        if stubbornness == "blocks the loop":
            release.wait(30)
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.01)
        events.append("stubborn ended")

    @pool.job("next")
    async def next_(job: Job) -> None:
        events.append("next started")

    pool.start()
    enqueuer.enqueue("stubborn")
    [dead] = wait_until(view.dead, timeout=15, what="the abandoned run filed")
    assert "timed out" in dead.fields["err"] and dead.fields["fails"] == 1
    assert pool.stuck_runs == 1
    enqueuer.enqueue("next")
    wait_until(lambda: view.queued("next") == [], what="the next job fetched, to wait for the slot")
    release.set()
    pool.drain(timeout=15)
    assert events == ["stubborn started", "stubborn ended", "next started"], "the stuck run kept its slot"
    assert len(view.dead()) == 1 and view.retry() == [], "the late end of the abandoned run filed nothing"
    assert pool.stuck_runs == 0
    assert view.idle_problems("stubborn", pool.pool_id) == []
