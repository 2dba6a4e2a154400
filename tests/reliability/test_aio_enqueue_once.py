"""AsyncEnqueuer sends every enqueue once, as the sync Enqueuer does (test_enqueue_once.py): after a stall longer
than the socket time-out it raises `MaybeEnqueued` with exactly one copy stored, whatever redis.asyncio's `Retry`;
a connection Redis closed is replaced before the write; a task cancelled mid-enqueue leaves no half-read connection
behind. Runs a redis-server of its own (DEBUG SLEEP stalls it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
import redis.asyncio

from redis_servers import HOST, RedisProcess
from reliability.test_enqueue_once import (
    ENQUEUE_CALLS,
    SOCKET_TIMEOUT,
    STALL,
    WARM_UP_CALLS,
    call,
    check_stored_once,
    stall,
    stored_ids,
)
from workq import MaybeEnqueued
from workq.aio import AsyncEnqueuer

CLIENTS: dict[str, Callable[[int], redis.asyncio.Redis | str]] = {
    "redis.asyncio.Redis with its default Retry": lambda port: redis.asyncio.Redis(
        host=HOST, port=port, socket_timeout=SOCKET_TIMEOUT
    ),
    "URL": lambda port: f"redis://{HOST}:{port}/0?socket_timeout={SOCKET_TIMEOUT}",
}


@pytest.mark.parametrize("client_kind", list(CLIENTS))
@pytest.mark.parametrize("variant", list(ENQUEUE_CALLS))
def test_an_async_enqueue_whose_reply_timed_out_is_never_sent_twice(
    stallable_redis: RedisProcess, namespace: str, variant: str, client_kind: str
) -> None:
    admin = stallable_redis.client()

    async def enqueue_through_a_stall() -> tuple[MaybeEnqueued, float]:
        async with AsyncEnqueuer(namespace, CLIENTS[client_kind](stallable_redis.port), clock=time.time) as enqueuer:
            for method, args in WARM_UP_CALLS:
                await call(enqueuer, method, args)
            admin.delete(f"{namespace}:scheduled")  # only the copies of the stalled enqueue are counted
            stalled = stall(stallable_redis)
            started = time.monotonic()
            with pytest.raises(MaybeEnqueued, match=r"may have been enqueued: Redis at .* reply was lost") as raised:
                await call(enqueuer, variant, ENQUEUE_CALLS[variant])
            elapsed = time.monotonic() - started
            stalled.read_response()  # the stall is over: everything Redis received has run
            return raised.value, elapsed

    error, elapsed = asyncio.run(enqueue_through_a_stall())
    check_stored_once(admin, namespace, error, elapsed, f"async enqueue-once {variant} ({client_kind})")


def test_a_connection_redis_closed_is_replaced_before_the_async_enqueue_is_written(
    stallable_redis: RedisProcess, namespace: str
) -> None:
    admin = stallable_redis.client()

    async def enqueue_after_a_kill() -> str:
        client = redis.asyncio.Redis(host=HOST, port=stallable_redis.port, socket_timeout=SOCKET_TIMEOUT)
        enqueuer = AsyncEnqueuer(namespace, client)
        await enqueuer.enqueue("x")
        assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
        job = await enqueuer.enqueue("x")  # returns: the dead connection was replaced before the write
        await client.aclose()
        return job.id

    job_id = asyncio.run(enqueue_after_a_kill())
    assert stored_ids(admin, namespace).count(job_id) == 1
    assert len(stored_ids(admin, namespace)) == 2


def test_a_task_cancelled_while_awaiting_its_reply_leaves_no_connection_out_of_step(
    stallable_redis: RedisProcess, namespace: str
) -> None:
    """The cancelled enqueue's reply arrives after the cancel: a connection handed back to the pool unread would
    give it to the next command, which would return a reply not its own."""
    admin = stallable_redis.client()

    async def cancel_then_enqueue() -> tuple[list[str], list[str]]:
        client = redis.asyncio.Redis(host=HOST, port=stallable_redis.port, socket_timeout=5)
        async with AsyncEnqueuer(namespace, client) as enqueuer:
            await enqueuer.enqueue("x")
            stalled = stall(stallable_redis)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(enqueuer.enqueue("x"), STALL / 4)
            stalled.read_response()
            later = [await enqueuer.enqueue_unique("x", {"n": n}) for n in range(3)]
            unique_again = await enqueuer.enqueue_unique("x", {"n": 0})
        await client.aclose()
        assert unique_again is None, "replies match their commands"
        return [job.id for job in later if job is not None], [job.id for job in later if job is None]

    later_ids, refused = asyncio.run(cancel_then_enqueue())
    assert not refused
    stored = stored_ids(admin, namespace)
    assert len(stored) == 5, "the first, the cancelled one (it ran), and three later"
    assert all(stored.count(job_id) == 1 for job_id in later_ids)
