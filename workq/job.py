"""The job record, its wire JSON (gocraft/work's field order) and typed argument access."""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from workq import gojson
from workq.errors import ArgError, MalformedJob

_KNOWN_FIELDS = ("name", "id", "t", "args", "unique", "unique_key", "fails", "err", "failed_at")
FIRST_ENQUEUED_FIELD = "first_enqueued_at"
"""ext: the job's original `t`, kept in `extra` once a requeue resets `t` (gocraft/work's requeuer sets `t` to the
time it moves a job back to its queue, so queue latency counts from there; this field keeps when it was enqueued)."""
_T = TypeVar("_T")
_View = TypeVar("_View", bound="Job")


def new_job_id() -> str:
    """24 lowercase hex characters, as gocraft/work makes them: 96 random bits from the `random` module, which
    is reseeded after a fork; ids need to be unique, not secret, and this is a system call cheaper per job."""
    return f"{random.getrandbits(96):024x}"


_PLAIN_STRING = re.compile(r"[A-Za-z0-9_.\-]*\Z")


def _json_string(value: str) -> str:
    """A JSON string as Go writes it; job names and ids are almost always plain, which needs no escaping."""
    if _PLAIN_STRING.match(value):
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False).translate(gojson._GO_ESCAPES)


@dataclass
class Job:
    """One unit of work. `args` is a JSON object; `extra` keeps fields other writers added, so nothing is lost."""

    name: str
    id: str = field(default_factory=new_job_id)
    enqueued_at: int = 0
    args: dict[str, Any] = field(default_factory=dict)
    unique: bool = False
    unique_key: str = ""
    fails: int = 0
    last_err: str = ""
    failed_at: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    args_null: bool = field(default=False, repr=False)
    _arg_problem: ArgError | None = field(default=None, init=False, repr=False, compare=False)
    _checkin_hook: Callable[[str], None] | None = field(default=None, init=False, repr=False, compare=False)
    _cancelled: bool = field(default=False, init=False, repr=False, compare=False)
    _returned: Any = field(default=None, init=False, repr=False, compare=False)
    """What the handler returned (the chain's middlewares need not pass it on); kept with `keep_result`."""

    # --- wire format ---------------------------------------------------------------------------------------

    def to_json(self) -> str:
        """Serialise in gocraft/work's field order, omitting empty fields as Go's `omitempty` does."""
        args = "null" if self.args_null and not self.args else gojson.dumps(self.args)
        parts = []
        if self.name:
            parts.append(f'"name":{_json_string(self.name)}')
        parts.append(f'"id":{_json_string(self.id)}')
        parts.append(f'"t":{int(self.enqueued_at)}')
        parts.append(f'"args":{args}')
        if self.unique:
            parts.append('"unique":true')
        if self.unique_key:
            parts.append(f'"unique_key":{_json_string(self.unique_key)}')
        if self.fails:
            parts.append(f'"fails":{int(self.fails)}')
        if self.last_err:
            parts.append(f'"err":{_json_string(self.last_err)}')
        if self.failed_at:
            parts.append(f'"failed_at":{int(self.failed_at)}')
        for key, value in self.extra.items():
            parts.append(f"{_json_string(key)}:{gojson.dumps(value)}")
        return "{" + ",".join(parts) + "}"

    @classmethod
    def from_json(cls, payload: bytes | str) -> Job:
        """Parse wire JSON; raise `MalformedJob` saying what is wrong (including nesting deeper than args may)."""
        try:
            data = json.loads(payload, parse_float=_finite_float, parse_int=_integer, parse_constant=_refuse_constant)
        except MalformedJob:
            raise
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedJob(f"not valid JSON: {exc}") from None
        except RecursionError:
            raise MalformedJob(_TOO_DEEP) from None
        if _nests_too_deep(payload, data):
            raise MalformedJob(_TOO_DEEP)
        if not isinstance(data, dict):
            raise MalformedJob(f"a job is a JSON object, got {type(data).__name__}")
        name = _field(data, "name", str, "")
        if not name:
            raise MalformedJob("the job has no name")
        args = data.get("args")
        if args is not None and not isinstance(args, dict):
            raise MalformedJob(f"args must be a JSON object or null, got {type(args).__name__}")
        return cls(
            name=name,
            id=_field(data, "id", str, ""),
            enqueued_at=_int_field(data, "t"),
            args=args or {},
            args_null=args is None,
            unique=_field(data, "unique", bool, False),
            unique_key=_field(data, "unique_key", str, ""),
            fails=_int_field(data, "fails"),
            last_err=_field(data, "err", str, ""),
            failed_at=_int_field(data, "failed_at"),
            extra={key: value for key, value in data.items() if key not in _KNOWN_FIELDS},
        )

    def as_view(self, view: type[_View], **score: int) -> _View:
        """This job as a sorted-set view (`ScheduledJob`, `RetryJob`, `DeadJob`) carrying its score."""
        values: dict[str, Any] = {spec.name: getattr(self, spec.name) for spec in fields(Job) if spec.init}
        values.update(score)
        return view(**values)

    @property
    def first_enqueued_at(self) -> int:
        """When the job was first enqueued: `t` before any retry or reschedule reset it (epoch seconds)."""
        first = self.extra.get(FIRST_ENQUEUED_FIELD)
        if isinstance(first, (int, float)) and not isinstance(first, bool) and math.isfinite(first) and first > 0:
            return int(first)
        return self.enqueued_at

    def reenqueued(self, now: int) -> None:
        """Set `t` to `now` as a requeue does, first keeping the original `t` in `FIRST_ENQUEUED_FIELD`."""
        if self.enqueued_at != now and FIRST_ENQUEUED_FIELD not in self.extra and self.enqueued_at > 0:
            self.extra[FIRST_ENQUEUED_FIELD] = self.enqueued_at
        self.enqueued_at = now

    # --- typed arguments -----------------------------------------------------------------------------------

    def arg_str(self, key: str) -> str:
        return self._arg(key, str, "a string", "")

    def arg_int(self, key: str) -> int:
        value = self.args.get(key)
        if isinstance(value, float) and value.is_integer():
            return int(value)  # Go and Lua's cjson write numbers as float64
        return self._arg(key, int, "an integer", 0)

    def arg_float(self, key: str) -> float:
        value = self.args.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return self._arg(key, float, "a number", 0.0)

    def arg_bool(self, key: str) -> bool:
        return self._arg(key, bool, "a boolean", False)

    def arg_error(self) -> ArgError | None:
        """The first problem met by an `arg_*` accessor, or None: check it once after reading every argument."""
        return self._arg_problem

    def _arg(self, key: str, kind: type[_T], described: str, zero: _T) -> _T:
        if key not in self.args:
            self._note_arg_problem(f"job {self.name} {self.id}: missing argument {key!r}")
            return zero
        value = self.args[key]
        if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
            return value
        self._note_arg_problem(
            f"job {self.name} {self.id}: argument {key!r} should be {described}, got {type(value).__name__} {value!r}"
        )
        return zero

    def _note_arg_problem(self, message: str) -> None:
        if self._arg_problem is None:
            self._arg_problem = ArgError(message)

    # --- progress ------------------------------------------------------------------------------------------

    def checkin(self, message: str = "") -> None:
        """Record progress of a running job (shown in worker observations) and give it its whole `timeout` again.

        In a run already stopped (timed out or cancelled) it raises `JobTimeout` or `Cancelled` again.
        """
        if self._checkin_hook is not None:
            self._checkin_hook(message)

    @property
    def cancelled(self) -> bool:
        """True once this run was cancelled or passed its time limit: loops check it between steps and stop."""
        return self._cancelled


_MAX_JOB_DEPTH = gojson.MAX_DEPTH + 1  # the job object holds args
_TOO_DEEP = f"objects and arrays nest too deep: args may nest at most {gojson.MAX_DEPTH} levels"


def _nests_too_deep(payload: bytes | str, data: object) -> bool:
    """Whether parsed job JSON nests deeper than a job may; refusing it here, once, spares every later encoder
    and walker a `RecursionError`."""
    if isinstance(payload, bytes):
        opened = payload.count(b"{") + payload.count(b"[")
    else:
        opened = payload.count("{") + payload.count("[")
    if opened <= _MAX_JOB_DEPTH:
        return False  # the usual case: too few brackets (even counting those in strings) to nest that deep
    level = [data] if isinstance(data, (dict, list)) else []
    for _ in range(_MAX_JOB_DEPTH):  # afterwards `level` holds the containers one level deeper than allowed
        level = [
            item
            for container in level
            for item in (container.values() if isinstance(container, dict) else container)
            if isinstance(item, (dict, list))
        ]
        if not level:
            return False
    return True


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedJob(f"number {text} is out of range for a float64")
    return value


def _integer(text: str) -> int | float:
    """`-0` is Go's negative zero (float64): kept as -0.0 it is written back as `-0`, and the unique key derived
    from the args (gocraft/work v0.5.1 jobs) is the one Go took."""
    return -0.0 if text == "-0" else int(text)


def _refuse_constant(name: str) -> None:
    raise MalformedJob(f"{name} is not valid JSON")


def _field(data: dict[str, Any], key: str, kind: type[_T], default: _T) -> _T:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise MalformedJob(f"field {key!r} should be {kind.__name__}, got {type(value).__name__}")
    return value


def _int_field(data: dict[str, Any], key: str) -> int:
    value = data.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedJob(f"field {key!r} should be a number, got {type(value).__name__}")
    return int(value)


@dataclass
class ScheduledJob(Job):
    """A job in the scheduled set; `run_at` is when it becomes due (epoch seconds)."""

    run_at: int = 0


@dataclass
class RetryJob(Job):
    """A failed job waiting in the retry set until `retry_at`."""

    retry_at: int = 0


@dataclass
class DeadJob(Job):
    """A job out of retries, in the dead set since `died_at`."""

    died_at: int = 0


def check_job_name(name: object) -> str:
    """Return `name` if it can name a queue; raise `TypeError`/`ValueError` saying why not."""
    if not isinstance(name, str):
        raise TypeError(f"a job name is a string, got {type(name).__name__}")
    if not name:
        raise ValueError("a job name cannot be empty")
    bad = [char for char in name if char == ":" or char.isspace() or not char.isprintable()]
    if bad:
        raise ValueError(f"job name {name!r} contains {bad[0]!r}: names cannot hold ':', spaces or control characters")
    return name


def check_args(args: object) -> dict[str, Any]:
    """Return `args` as a dict; its values are checked when it is encoded (`Job.to_json`, `gojson.dumps`), which
    raises `TypeError` for anything JSON cannot hold or nesting deeper than `gojson.MAX_DEPTH` — before Redis is
    touched."""
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise TypeError(f"job args are a dict of JSON values, got {type(args).__name__}")
    return args


def malformed_job_record(job_name: str, payload: bytes | str, reason: str, now: int) -> Job:
    """What the dead set holds for bytes that are not a job: the reason in `err`, the bytes in `payload`."""
    return Job(
        name=job_name,
        enqueued_at=now,
        args_null=True,
        fails=1,
        last_err=reason,
        failed_at=now,
        extra={"payload": payload if isinstance(payload, str) else payload.decode("utf-8", errors="replace")},
    )
