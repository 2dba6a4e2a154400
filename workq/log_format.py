"""`--log-format json`: one JSON object per line, for log shippers (Loki, Elasticsearch, CloudWatch).

Each line has `time` (UTC, ISO 8601 with milliseconds), `level`, `logger`, `message`, the fields the process
declared (`pool_id`, `child` under `--processes`), and, for lines logged while a job runs in that thread or task,
`job_name`, `job_id` and `attempt` (1 for the first run); under `workq.otel.instrument()`, lines logged inside a
span carry its `trace_id` and `span_id`. A traceback goes in `exception`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any, TextIO

from workq import instrumentation
from workq.job import Job

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CHILD_INDEX_ENV = "WORKQ_CHILD_INDEX"
"""Set by the `--processes` supervisor in each child's environment: the child's slot, from 0."""

_running_job: ContextVar[tuple[str, str, int] | None] = ContextVar("workq_running_job", default=None)
"""Name, id and attempt of the job whose run (or acknowledgement) the current thread or task is in."""


class job_context:  # noqa: N801 (used as a function: `with job_context(job):`)
    """Lines logged inside carry the job's name, id and attempt (a context variable: per thread and per task).

    Taken as the block starts: the failure lines logged after a run count the attempt that failed, not the next.
    A class rather than a generator: it is entered on every run, and this costs a tenth of @contextmanager's."""

    __slots__ = ("_job", "_token")

    def __init__(self, job: Job) -> None:
        self._job = (job.name, job.id, job.fails + 1)

    def __enter__(self) -> None:
        self._token = _running_job.set(self._job)

    def __exit__(self, *exc_info: object) -> None:
        _running_job.reset(self._token)


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
            line["job_name"], line["job_id"], line["attempt"] = job
        line.update(instrumentation.log_fields())
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: str, log_format: str = "text", stream: TextIO | None = None, **fields: object) -> None:
    """Replace the root logger's handlers with one writing `log_format` lines to `stream` (stderr). `fields` go
    into every JSON line; of them, a text line shows only `child` (the `--processes` slot)."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {log_format!r}")
    handler = logging.StreamHandler(stream) if stream is not None else _CurrentStderrHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter(**fields))
    else:  # under `--processes`, a text line names the child that wrote it
        child = fields.get("child")
        prefix = "" if child is None else f"[child {child}] "
        handler.setFormatter(logging.Formatter(TEXT_FORMAT.replace("%(message)s", prefix + "%(message)s")))
    logging.basicConfig(level=level, handlers=[handler], force=True)


class _CurrentStderrHandler(logging.Handler):
    """Writes each record to `sys.stderr` as it is then (as logging's last-resort handler does), not as it was when
    logging was configured: `main()` run in-process, under a test's capture or a tool's redirect_stderr, must not
    leave the root logger holding a stream that is closed once the call returns."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
