"""workq pools for the asyncio benchmarks (`workq worker benchmarks.apps.workq_async_app:ATTR`):

- `io_pool`: the I/O-bound job as an `async def` handler, `IN_FLIGHT` at once;
- `threads_io_pool`: the same wait as `time.sleep` in a sync handler on `IN_FLIGHT` threads (what async replaces);
- `noop_pool`: the no-op job (one recorded round trip) as an `async def` handler.
"""

from __future__ import annotations

import time

from benchmarks.apps.io_job import IN_FLIGHT, IO_SECONDS, io_bound
from benchmarks.apps.workq_app import JOB_NAME
from benchmarks.effect import record_run, record_run_async
from workq import Job, WorkerPool

io_pool = WorkerPool(async_concurrency=IN_FLIGHT)
threads_io_pool = WorkerPool(concurrency=IN_FLIGHT)
noop_pool = WorkerPool(async_concurrency=IN_FLIGHT)


@io_pool.job(JOB_NAME, max_fails=1)
async def io(job: Job) -> None:
    await io_bound(job.arg_int("n"))


@threads_io_pool.job(JOB_NAME, max_fails=1)
def io_in_a_thread(job: Job) -> None:
    time.sleep(IO_SECONDS)
    record_run(job.arg_int("n"))


@noop_pool.job(JOB_NAME, max_fails=1)
async def noop(job: Job) -> None:
    await record_run_async(job.arg_int("n"))
