"""The pool of the observability CLI tests: `ok` succeeds and logs a line, `boom` fails for good at once."""

from __future__ import annotations

import logging

from workq import Job, WorkerPool

pool = WorkerPool(concurrency=2)
logger = logging.getLogger("metrics_app")


@pool.job("ok")
def ok(job: Job) -> None:
    logger.info("handled n=%s", job.args.get("n"))


@pool.job("boom", max_fails=1)
def boom(job: Job) -> None:
    raise RuntimeError("boom")
