"""Wakeup: a broadcast that ends every wait in progress, and only those. WakeSignal: when a pool's mark stands."""

from __future__ import annotations

import threading
from typing import Any

import fakeredis

from support import wait_until
from workq.keys import Keys
from workq.wakeup import MARK_TRUSTED, WakeSignal, Wakeup


def test_notify_ends_every_wait_in_progress() -> None:
    wakeup = Wakeup()
    results: list[bool] = []
    waiters = [threading.Thread(target=lambda: results.append(wakeup.wait(10))) for _ in range(3)]
    for waiter in waiters:
        waiter.start()

    def all_woken() -> bool:
        wakeup.notify()
        return not any(waiter.is_alive() for waiter in waiters)

    wait_until(all_woken, timeout=5, what="every waiter to wake")
    assert results == [True, True, True]


def test_a_wait_begun_after_notify_waits_afresh() -> None:
    wakeup = Wakeup()
    wakeup.notify()
    assert wakeup.wait(0.01) is False


def test_a_wait_without_notify_times_out_false() -> None:
    assert Wakeup().wait(0) is False


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def wake_signal(client: fakeredis.FakeRedis, clock: Clock) -> WakeSignal:
    return WakeSignal(client, Keys("ns"), {"x": Wakeup()}, monotonic=clock)


def test_a_mark_stands_until_a_wake_up_for_its_names_comes(fake_redis: fakeredis.FakeRedis) -> None:
    """An idle pool's empty fetch is its last look only while an enqueue would publish: the mark it set is in
    Redis, and no enqueue has deleted it (which would have sent this wake-up)."""
    signal = wake_signal(fake_redis, Clock())
    assert not signal.marked()
    signal.mark_waiting()
    assert signal.marked() and fake_redis.exists("ns:jobs:x:waiting")
    signal.channel.on_message("other")  # a name this pool does not run: its mark is untouched
    assert signal.marked()
    signal.channel.on_message("x")
    assert not signal.marked()


def test_a_mark_stands_until_a_fetch_finds_jobs_or_half_its_lifetime_passed(fake_redis: fakeredis.FakeRedis) -> None:
    """A fetch that found jobs may follow a wake-up this pool missed (not subscribed yet): the next idle look marks
    again. So does one after half the mark's lifetime, well before Redis lets it expire."""
    clock = Clock()
    signal = wake_signal(fake_redis, clock)
    signal.mark_waiting()
    signal.found_jobs()
    assert not signal.marked()
    signal.mark_waiting()
    clock.now += MARK_TRUSTED - 0.1
    assert signal.marked()
    clock.now += 0.1
    assert not signal.marked()


def test_a_mark_does_not_stand_when_a_wake_up_came_during_its_round_trip(fake_redis: fakeredis.FakeRedis) -> None:
    """The enqueue that sent it may have deleted the mark just set: the pool looks once more, marking again."""
    signal = wake_signal(fake_redis, Clock())
    real_pipeline = fake_redis.pipeline

    def pipeline_then_wake(*args: Any, **kwargs: Any) -> Any:
        pipe = real_pipeline(*args, **kwargs)
        execute = pipe.execute

        def executed() -> Any:
            replies = execute()
            signal.channel.on_message("x")
            return replies

        pipe.execute = executed
        return pipe

    fake_redis.pipeline = pipeline_then_wake  # type: ignore[method-assign]
    signal.mark_waiting()
    assert not signal.marked()


def test_a_mark_does_not_stand_once_resubscribed(fake_redis: fakeredis.FakeRedis) -> None:
    """Wake-ups sent while the pool was not subscribed were lost, and may have deleted the mark."""
    signal = wake_signal(fake_redis, Clock())
    signal.mark_waiting()
    assert signal.channel.on_resubscribed is not None
    signal.channel.on_resubscribed()
    assert not signal.marked()
