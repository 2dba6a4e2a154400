"""Typed tasks end to end on real Redis: `.enqueue` (positional args sent by name) reaches a pool that calls the
function with its parameters bound; args that do not fit — a wrong type, bool for int, a missing or unknown
argument — file the job dead at once with the reason (fails=1, no retry), or discard it with skip_dead."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from integration.namespace_view import NamespaceView
from integration.pool_factory import PoolFactory
from support import wait_until
from workq import Enqueuer
from workq.aio import AsyncEnqueuer


def test_a_typed_task_runs_with_its_args_bound_to_its_parameters(
    make_pool: PoolFactory, view: NamespaceView, redis_url: str
) -> None:
    pool = make_pool()
    calls: list[dict[str, Any]] = []
    done = threading.Event()

    @pool.task
    def resize(image: str, width: int, scale: float = 1.0, tags: list[str] | None = None) -> None:
        calls.append({"image": image, "width": width, "scale": scale, "tags": tags})
        if len(calls) == 3:
            done.set()

    first = resize.enqueue("a.png", 640)
    resize.enqueue(image="b.png", width=32, scale=2, tags=["x"])
    stored = [raw for raw in view.queued("resize")]
    assert b'"args":{"image":"a.png","width":640}' in stored[-1], "positional args go by name; defaults left out"

    async def enqueue_async() -> None:
        async with AsyncEnqueuer(pool.namespace, redis_url) as enqueuer:
            await resize.using(enqueuer).enqueue("c.png", width=8)

    asyncio.run(enqueue_async())
    pool.start()
    assert done.wait(30)
    assert calls == [
        {"image": "a.png", "width": 640, "scale": 1.0, "tags": None},
        {"image": "b.png", "width": 32, "scale": 2.0, "tags": ["x"]},
        {"image": "c.png", "width": 8, "scale": 1.0, "tags": None},
    ]
    assert type(calls[1]["scale"]) is float
    assert first.name == "resize" and view.dead() == [] and view.retry() == []


def test_args_that_do_not_fit_send_the_job_to_the_dead_set_at_once(
    make_pool: PoolFactory, view: NamespaceView, enqueuer: Enqueuer
) -> None:
    pool = make_pool()
    ran: list[int] = []

    @pool.task(max_fails=5)
    def charge(cents: int, note: str = "") -> None:
        ran.append(cents)

    bad = {
        enqueuer.enqueue("charge", {"cents": "100"}).id: "argument 'cents' should be int, got str '100'",
        enqueuer.enqueue("charge", {"cents": True}).id: "argument 'cents' should be int, got bool True",
        enqueuer.enqueue("charge", {"note": "x"}).id: "missing argument 'cents'",
        enqueuer.enqueue("charge", {"cents": 1, "cent": 2}).id: "unknown argument 'cent'",
        enqueuer.enqueue("charge").id: "missing argument 'cents'",
    }
    good = charge.enqueue(cents=7)
    pool.start()
    wait_until(lambda: len(view.dead()) == len(bad) and ran, timeout=30, what="the bad jobs dead, the good one run")
    pool.drain(timeout=30)

    assert ran == [7], f"only {good.id} ran"
    dead = {member.fields["id"]: member.fields for member in view.dead()}
    assert sorted(dead) == sorted(bad)
    for job_id, reason in bad.items():
        assert dead[job_id]["fails"] == 1, "no retries"
        assert f"ArgsMismatch: job charge {job_id}: args do not fit task 'charge': " in dead[job_id]["err"]
        assert reason in dead[job_id]["err"]
    assert view.retry() == []


def test_with_skip_dead_a_job_whose_args_do_not_fit_is_discarded(
    make_pool: PoolFactory, view: NamespaceView, enqueuer: Enqueuer
) -> None:
    pool = make_pool()
    seen = threading.Event()

    @pool.task(skip_dead=True)
    def ping(n: int) -> None:
        seen.set()

    enqueuer.enqueue("ping", {"n": 1.5})
    ping.enqueue(2)
    pool.start()
    assert seen.wait(30)
    pool.drain(timeout=30)
    assert view.dead() == [] and view.retry() == [] and view.queued("ping") == []


def test_an_async_task_runs_with_its_args_bound_and_a_mismatch_goes_dead_at_once(
    make_pool: PoolFactory, view: NamespaceView, enqueuer: Enqueuer, redis_url: str
) -> None:
    pool = make_pool()
    ran: list[tuple[str, int]] = []
    done = threading.Event()

    @pool.task(max_fails=3)
    async def fetch(url: str, attempts: int = 1) -> str:
        await asyncio.sleep(0.01)  # a real await: the body runs on the pool's event loop
        ran.append((url, attempts))
        if len(ran) == 2:
            done.set()
        return url

    fetch.enqueue("https://a.example")
    bad = enqueuer.enqueue("fetch", {"url": "https://b.example", "attempts": "2"})

    async def enqueue_async() -> None:
        async with AsyncEnqueuer(pool.namespace, redis_url) as async_enqueuer:
            await fetch.using(async_enqueuer).enqueue(url="https://c.example", attempts=2)

    asyncio.run(enqueue_async())
    pool.start()
    assert done.wait(30)
    wait_until(lambda: len(view.dead()) == 1, timeout=30, what="the mismatched job dead")
    pool.drain(timeout=30)

    assert sorted(ran) == [("https://a.example", 1), ("https://c.example", 2)]
    (dead,) = view.dead()
    assert dead.fields["id"] == bad.id and dead.fields["fails"] == 1
    assert "argument 'attempts' should be int, got str '2'" in dead.fields["err"]
    assert view.retry() == []
    assert asyncio.run(fetch("direct")) == "direct", "calling the task calls the function"


def test_a_by_key_task_enqueue_replaces_the_pending_args(make_pool: PoolFactory, view: NamespaceView) -> None:
    pool = make_pool()
    ran: list[tuple[str, int]] = []
    done = threading.Event()

    @pool.task
    def sync_user(user: str, revision: int) -> None:
        ran.append((user, revision))
        done.set()

    first = sync_user.enqueue_unique_by_key({"user": "ada"}, "ada", 1)
    assert first is not None
    assert sync_user.enqueue_unique_by_key({"user": "ada"}, "ada", revision=2) is None, "pending: args replaced"
    later = sync_user.enqueue_unique_in_by_key(3600, {"user": "bob"}, "bob", 1)
    assert later is not None and [member.fields["id"] for member in view.scheduled()] == [later.id]
    pool.start()
    assert done.wait(30)
    pool.drain(timeout=30)
    assert ran == [("ada", 2)], "one run, with the newest args"
