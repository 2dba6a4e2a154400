"""`--log-format json`: one JSON object per line, for log shippers (Loki, Elasticsearch, CloudWatch).

Each line has `time` (UTC, ISO 8601 with milliseconds), `level`, `logger`, `message`, the fields the process
declared (`pool_id`, `child` under `--processes`), and, for lines logged while a job runs in that thread or task,
`job_name`, `job_id` and `attempt` (1 for the first run). A traceback goes in `exception`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

from workq.job import Job

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CHILD_INDEX_ENV = "WORKQ_CHILD_INDEX"
"""Set by the `--processes` supervisor in each child's environment: the child's slot, from 0."""

_running_job: ContextVar[Job | None] = ContextVar("workq_running_job", default=None)


@contextmanager
def job_context(job: Job) -> Iterator[None]:
    """Lines logged inside carry the job's name, id and attempt (a context variable: per thread and per task)."""
    token = _running_job.set(job)
    try:
        yield
    finally:
        _running_job.reset(token)


def log_context(job: Job, next: Callable[[], None]) -> None:
    """A middleware, outermost in every pool's chains: the run's log lines carry the job."""
    with job_context(job):
        next()


class JsonFormatter(logging.Formatter):
    def __init__(self, **fields: object) -> None:
        super().__init__()
        self._fields = {name: value for name, value in fields.items() if value is not None}

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **self._fields,
        }
        job = _running_job.get()
        if job is not None:
            line.update(job_name=job.name, job_id=job.id, attempt=job.fails + 1)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: str, log_format: str = "text", stream: TextIO | None = None, **fields: object) -> None:
    """Replace the root logger's handlers with one writing `log_format` lines to `stream` (stderr)."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {log_format!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(**fields) if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
