"""Wakeup: a broadcast that ends every wait in progress, and only those."""

from __future__ import annotations

import threading

from support import wait_until
from workq.wakeup import Wakeup


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
