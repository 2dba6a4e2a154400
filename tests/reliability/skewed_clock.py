"""`python -m reliability.skewed_clock <workq arguments>`: the `workq` command on a host whose clock is off.

`time.time` and `time.time_ns` are shifted by `WORKQ_TEST_CLOCK_OFFSET` seconds before workq is imported, as on a
host whose clock is that far ahead (or behind, when negative). workq's own `clock=` is not used: an injected clock
would drive the scripts too and so bypass Redis `TIME`, which is what the skew tests must exercise.
"""

from __future__ import annotations

import os
import sys
import time

OFFSET_ENV = "WORKQ_TEST_CLOCK_OFFSET"


def command(*workq_args: str) -> list[str]:
    """The argv that runs `workq <workq_args>` under this launcher (set `OFFSET_ENV` in its environment)."""
    return [sys.executable, "-m", "reliability.skewed_clock", *workq_args]


def shift_clock(offset: float) -> None:
    real_time, real_time_ns = time.time, time.time_ns
    offset_ns = round(offset * 1_000_000_000)
    time.time = lambda: real_time() + offset  # type: ignore[assignment]
    time.time_ns = lambda: real_time_ns() + offset_ns  # type: ignore[assignment]


def main() -> int:
    shift_clock(float(os.environ.get(OFFSET_ENV, "0")))
    # Imported only now, so that what binds time.time at import (default arguments) binds the shifted one.
    from workq.cli import main as workq_main  # noqa: PLC0415

    return workq_main()


if __name__ == "__main__":
    sys.exit(main())
