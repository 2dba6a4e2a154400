"""Wakeup: a broadcast that ends every wait in progress, and only those."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest
import redis
from redis.client import PubSub

from support import wait_until
from workq.keys import Keys
from workq.wakeup import WakeSignal, Wakeup


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


class RefusesFirstSubscribe:
    """A Redis client whose first pub/sub refuses to subscribe as an ACL without channel rights does (NOPERM)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self.refused = 0

    def pubsub(self, **kwargs: Any) -> PubSub:
        pubsub = self._client.pubsub(**kwargs)
        if not self.refused:
            self.refused += 1
            pubsub.close()
            raise redis.ResponseError("NOPERM this user has no permissions to access one of the channels")
        return pubsub

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_the_wake_listener_survives_an_error_that_is_not_a_lost_connection(
    redis_client: redis.Redis, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """It used to die on anything but a connection error, leaving idle workers to their slow poll for good."""
    keys = Keys(namespace)
    wakeup = Wakeup()
    refusing = RefusesFirstSubscribe(redis_client)
    signal = WakeSignal(cast(Any, refusing), keys, {"work": wakeup})
    signal.start()
    try:
        wait_until(lambda: redis_client.pubsub_numsub(keys.wake_channel)[0][1] == 1, timeout=10, what="resubscribed")
        woken = threading.Event()
        waiter = threading.Thread(target=lambda: woken.set() if wakeup.wait(30) else None, daemon=True)
        waiter.start()
        wait_until(lambda: wakeup._waiting == 1, timeout=10, what="the waiter to wait")
        redis_client.publish(keys.wake_channel, "work")
        assert woken.wait(10), "the listener did not relay the wake-up after its refused subscribe"
    finally:
        signal.stop()
    assert refusing.refused == 1
    assert "NOPERM" in caplog.text and f"An ACL user needs the channel: &{keys.wake_channel}" in caplog.text
