"""The supervisor's view of its children's health reports: "!" (a run stuck past its limit) or silence → replace."""

from __future__ import annotations

import os

from support import wait_until
from workq.cli.child_health import STUCK, WELL, ChildHealth


def test_a_child_reporting_a_stuck_run_or_falling_silent_is_unhealthy() -> None:
    health = ChildHealth(3, silent_limit=0.2)
    writers = [health.open(slot) for slot in range(3)]
    try:
        os.write(writers[0], WELL)
        os.write(writers[1], WELL + STUCK)
        assert health.unhealthy() == [(1, "holds a run stuck past its time limit")]
        os.write(writers[0], WELL)
        os.write(writers[1], WELL)
        assert health.unhealthy() == [], "well again (and heard from within the limit)"

        def silent() -> list[int]:
            os.write(writers[0], WELL)  # slot 0 keeps reporting; slot 2 never does
            return [slot for slot, why in health.unhealthy() if "no report" in why]

        assert 2 in wait_until(silent, timeout=5, what="the silent child to be noticed")
        assert 0 not in silent()
    finally:
        for fd in writers:
            os.close(fd)
        for slot in range(3):
            health.close(slot)
    assert health.fds == []
