"""Helpers for tests that wait on other threads or processes (poll with a deadline, never a bare sleep), and
inputs several suites try."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def wait_until(probe: Callable[[], T], timeout: float = 10.0, interval: float = 0.01, what: str = "") -> T:
    """Return the first truthy result of `probe()`; fail the test if none comes within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or probe}")
        time.sleep(interval)


def wait_for_count(count: Callable[[], int], target: int, stalled_after: float = 10.0, what: str = "") -> int:
    """Poll `count()` until it reaches `target`; fail the test only when it stops growing for `stalled_after` s.
    For waits on many runs: the test checks that they all happen, not how fast (a loaded machine runs them slowly,
    and a fixed deadline for the lot is a throughput assertion)."""
    seen = poll_count(count, target, stalled_after)
    if seen < target:
        raise AssertionError(f"no progress in {stalled_after} s waiting for {what or target}: {seen} of {target}")
    return seen


def poll_count(count: Callable[[], int], target: int, stalled_after: float = 10.0) -> int:
    """`wait_for_count` for a test that reports what it saw before it asserts: the last count seen, which is below
    `target` only when the count stopped growing for `stalled_after` s."""
    seen = count()
    deadline = time.monotonic() + stalled_after
    while seen < target and time.monotonic() < deadline:
        time.sleep(0.01)
        if (now := count()) > seen:
            seen, deadline = now, time.monotonic() + stalled_after
    return seen


class SteppedClock:
    """A clock that moves only when the test says so (`clock.now = ...`); pass it as a `clock=` to workq."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


BAD_REDIS_URLS = [
    "nope",
    "",
    "http://localhost",
    "redis://:abc",
    "redis://localhost:abc/0",
    "redis://localhost:-1",
    "redis://host:99999/0",
    "redis://[::1",
    "redis://localhost/0?socket_timeout=abc",
    "redis://localhost/0?bogus=1",
    "redis://localhost/0?ssl_check_hostname=false",
    "redis+sentinel://",
    "redis+sentinel://h:1/0?bogus=1x",
    "redis+cluster://",
]
"""Redis URLs no `workq` command can use: each must be refused in one line, never a traceback."""


def fetch_args(pool_id: str, now: float | str, token: str, leases: Sequence[float], slots: int = 1) -> list[object]:
    """ARGV of a fetch.lua call taking up to `slots` jobs, each slot trying the job names in the order of their keys
    (`leases`: each name's lease seconds, 0 = none); slot n's run token is `token` (n = 0) or `token` + n."""
    groups = range(1, len(leases) + 1)
    args: list[object] = [pool_id, now, slots, *leases]
    for slot in range(slots):
        args.extend((token if slot == 0 else f"{token}{slot}", *groups))
    return args


def one_fetched(reply: Sequence[object]) -> object:
    """A one-slot fetch.lua reply as [bytes, group, leased]; None when nothing was taken, or [b"", 0, key] naming
    the key of the wrong type it skipped."""
    broken, taken = reply[0], list(reply[1:])
    if not taken:
        return [b"", 0, broken] if broken else None
    assert len(taken) == 3, f"one slot took {len(taken) // 3} jobs"
    return taken
