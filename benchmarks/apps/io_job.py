"""The I/O-bound benchmark job of issue 14, the same for workq, arq and saq: wait 50 ms on the event loop (a stand-in
for a network call), then record the run. At most `IN_FLIGHT` at once, so the ceiling is IN_FLIGHT / IO_SECONDS
jobs/s. Only the standard library and benchmarks.effect here: the peers import it from their own virtualenv."""

from __future__ import annotations

import asyncio

from benchmarks.effect import record_run_async

IO_SECONDS = 0.05
IN_FLIGHT = 100
CEILING = IN_FLIGHT / IO_SECONDS
"""Jobs/s of a queue that costs nothing: 100 waits of 50 ms at any time."""


async def io_bound(number: int) -> None:
    await asyncio.sleep(IO_SECONDS)
    await record_run_async(number)
