"""BackgroundLoop: ticks on its own thread, survives failing ticks, stops promptly."""

from __future__ import annotations

import logging
import random
import threading
import time

import pytest
import redis

from workq.background import BackgroundLoop


def test_ticks_repeatedly_until_stopped() -> None:
    ticks: list[int] = []
    third = threading.Event()

    def tick() -> None:
        ticks.append(1)
        if len(ticks) == 3:
            third.set()

    loop = BackgroundLoop("counter", 0.01, tick, rng=random.Random(1))
    loop.start()
    try:
        assert third.wait(5)
    finally:
        loop.stop()
    count = len(ticks)
    assert count >= 3
    loop.stop()
    assert len(ticks) == count  # no tick after stop() returned


def test_first_tick_runs_at_once_even_with_a_long_interval() -> None:
    ticked = threading.Event()
    loop = BackgroundLoop("slow", 3600, ticked.set)
    loop.start()
    try:
        assert ticked.wait(5)
    finally:
        loop.stop()


def test_a_failing_tick_is_logged_and_the_loop_keeps_ticking(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    recovered = threading.Event()

    def tick() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first tick fails")
        recovered.set()

    loop = BackgroundLoop("flaky", 0.01, tick)
    with caplog.at_level(logging.ERROR, logger="workq"):
        loop.start()
        try:
            assert recovered.wait(5)
        finally:
            loop.stop()
    [record] = [r for r in caplog.records if "flaky" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and "first tick fails" in str(record.exc_info[1])


def test_a_redis_fault_is_a_warning_and_the_loop_keeps_ticking(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    recovered = threading.Event()

    def tick() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise redis.ConnectionError("down")
        recovered.set()

    loop = BackgroundLoop("redisy", 0.01, tick)
    with caplog.at_level(logging.WARNING, logger="workq"):
        loop.start()
        try:
            assert recovered.wait(5)
        finally:
            loop.stop()
    [record] = [r for r in caplog.records if "redisy" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "down" in record.getMessage()


def test_stop_interrupts_a_long_wait() -> None:
    ticked = threading.Event()
    loop = BackgroundLoop("sleepy", 3600, ticked.set)
    loop.start()
    assert ticked.wait(5)
    started = time.monotonic()
    loop.stop(timeout=5)
    assert time.monotonic() - started < 2


def test_runs_on_a_named_daemon_thread() -> None:
    seen: list[threading.Thread] = []
    ticked = threading.Event()

    def tick() -> None:
        seen.append(threading.current_thread())
        ticked.set()

    loop = BackgroundLoop("named", 3600, tick)
    loop.start()
    try:
        assert ticked.wait(5)
    finally:
        loop.stop()
    assert seen[0].name == "workq-named" and seen[0].daemon
    assert seen[0] is not threading.current_thread()


def test_stop_before_start_is_harmless() -> None:
    BackgroundLoop("never", 1, lambda: None).stop()
