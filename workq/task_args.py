"""Typed job arguments: a function's annotated parameters checked against JSON values — once at decoration (what
cannot be a JSON argument is refused), at enqueue (wrong names or types raise before Redis is touched) and at run
time (args that do not fit raise `ArgsMismatch`: the job is filed dead at once, retrying cannot fix its args).

Supported annotations: `int float str bool None Any`, `list` / `list[X]`, `dict` / `dict[str, X]`, `Optional[X]`,
unions (`X | Y`), `Literal[...]` of JSON scalars, nested at will. `bool` is not an `int`; an `int` is accepted for a
`float` (JSON does not tell them apart) and an integral float for an `int` (Go and Lua write numbers as float64).
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Union

from workq.errors import ArgsMismatch

_MISSING = inspect.Parameter.empty
_SCALARS: dict[Any, type] = {int: int, float: float, str: str, bool: bool}


class _Mismatch(Exception):
    """A value that does not fit; `where` is the path inside the argument (`[2]`, `['key']`)."""

    def __init__(self, expected: str, value: object, where: str = "") -> None:
        super().__init__(expected)
        self.expected = expected
        self.value = value
        self.where = where

    def nested(self, step: str) -> _Mismatch:
        return _Mismatch(self.expected, self.value, step + self.where)


@dataclass(frozen=True)
class _Check:
    """Checks one JSON value against an annotation; returns it (an int turned float for a `float`) or raises
    `_Mismatch`."""

    expected: str
    check: Callable[[Any], Any]

    def __call__(self, value: Any) -> Any:
        return self.check(value)


@dataclass(frozen=True)
class _Param:
    name: str
    check: _Check
    default: Any


class ArgSpec:
    """The parameters of a task function as JSON arguments, built once when the task is decorated."""

    def __init__(self, fn: Callable[..., Any], task_name: str) -> None:
        self.task_name = task_name
        self._signature = inspect.signature(fn)
        hints = _type_hints(fn, task_name)
        params: list[_Param] = []
        for param in self._signature.parameters.values():
            if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
                raise TypeError(
                    f"task {task_name!r}: parameter {param.name!r} is {param.kind.description}; a task's parameters "
                    "receive the job's args by name, so each must be a named parameter"
                )
            if param.name not in hints:
                raise TypeError(
                    f"task {task_name!r}: parameter {param.name!r} has no annotation; annotate it "
                    "(Any for any JSON value)"
                )
            check = _compile(hints[param.name], f"task {task_name!r}: parameter {param.name!r}")
            if param.default is not _MISSING:
                try:
                    check(param.default)
                except _Mismatch as mismatch:
                    raise TypeError(
                        f"task {task_name!r}: the default of {param.name!r} is not {mismatch.expected}"
                    ) from None
            params.append(_Param(param.name, check, param.default))
        self._params = {param.name: param for param in params}

    def to_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The job args of a call `fn(*args, **kwargs)` (positional ones by their parameter's name; defaults left
        out, the worker's apply); raises `TypeError` for a wrong name, a missing argument or a wrong type."""
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"task {self.task_name!r}: {exc}") from None
        for name, value in bound.arguments.items():
            try:
                self._params[name].check(value)
            except _Mismatch as mismatch:
                raise TypeError(f"task {self.task_name!r}: {_describe(mismatch, name)}") from None
        return dict(bound.arguments)

    def to_params(self, args: Mapping[str, Any], job_label: str) -> dict[str, Any]:
        """The keyword arguments a run calls the function with; raises `ArgsMismatch` naming every problem."""
        problems = [f"unknown argument {name!r}" for name in args if name not in self._params]
        params: dict[str, Any] = {}
        for name, param in self._params.items():
            if name in args:
                try:
                    params[name] = param.check(args[name])
                except _Mismatch as mismatch:
                    problems.append(_describe(mismatch, name))
            elif param.default is _MISSING:
                problems.append(f"missing argument {name!r}")
        if problems:
            raise ArgsMismatch(f"job {job_label}: args do not fit task {self.task_name!r}: {'; '.join(problems)}")
        return params


def _describe(mismatch: _Mismatch, name: str) -> str:
    got = f"{_json_type(mismatch.value)} {_short(mismatch.value)}"
    return f"argument {name!r}{mismatch.where} should be {mismatch.expected}, got {got}"


def _type_hints(fn: Callable[..., Any], task_name: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception as exc:  # a forward reference that does not resolve, a malformed annotation
        raise TypeError(f"task {task_name!r}: cannot read the annotations of {fn!r}: {exc}") from None


def _compile(annotation: Any, where: str) -> _Check:
    """The check of `annotation`, or `TypeError` saying it cannot be a JSON argument."""
    if annotation is Any:
        return _Check("any JSON value", lambda value: value)
    if annotation is None or annotation is type(None):
        return _Check("null", _scalar_check(type(None), "null"))
    if annotation in _SCALARS:
        return _Check(annotation.__name__, _scalar_check(annotation, annotation.__name__))
    origin, type_args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is list or origin is list:
        item = _compile(type_args[0], where) if type_args else None
        return _Check(_name(annotation), _list_check(item, _name(annotation)))
    if annotation is dict or origin is dict:
        if type_args and type_args[0] is not str:
            raise TypeError(f"{where}: {_name(annotation)} cannot be a JSON argument: JSON object keys are strings")
        value = _compile(type_args[1], where) if type_args else None
        return _Check(_name(annotation), _dict_check(value, _name(annotation)))
    if origin is Union or origin is types.UnionType:
        options = [_compile(option, where) for option in type_args]
        expected = " | ".join(option.expected for option in options)
        return _Check(expected, _union_check(options, expected))
    if origin is typing.Literal and all(_is_json_scalar(value) for value in type_args):
        expected = " | ".join(repr(value) for value in type_args)
        return _Check(expected, _literal_check(type_args, expected))
    raise TypeError(
        f"{where}: {_name(annotation)} cannot be a JSON argument (use int, float, str, bool, None, Any, list, "
        "dict[str, ...], Optional, unions or Literal)"
    )


def _scalar_check(kind: type, expected: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if type(value) is kind:
            return value
        if kind is float and type(value) is int:
            return float(value)
        if kind is int and type(value) is float and value.is_integer():
            return int(value)
        raise _Mismatch(expected, value)

    return check


def _list_check(item: _Check | None, expected: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, list):
            raise _Mismatch(expected, value)
        if item is None:
            return value
        checked = []
        for index, element in enumerate(value):
            try:
                checked.append(item(element))
            except _Mismatch as mismatch:
                raise mismatch.nested(f"[{index}]") from None
        return checked

    return check


def _dict_check(item: _Check | None, expected: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
            raise _Mismatch(expected, value)
        if item is None:
            return value
        checked = {}
        for key, element in value.items():
            try:
                checked[key] = item(element)
            except _Mismatch as mismatch:
                raise mismatch.nested(f"[{key!r}]") from None
        return checked

    return check


def _union_check(options: list[_Check], expected: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        converted: list[Any] = []
        for option in options:
            try:
                fitted = option(value)
            except _Mismatch:
                continue
            if type(fitted) is type(value):
                return fitted  # an option the value fits as it is wins over a conversion (int | float keeps 3)
            converted.append(fitted)
        if converted:
            return converted[0]
        raise _Mismatch(expected, value)

    return check


def _literal_check(values: tuple[Any, ...], expected: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if any(type(value) is type(allowed) and value == allowed for allowed in values):
            return value
        raise _Mismatch(expected, value)

    return check


def _is_json_scalar(value: object) -> bool:
    return value is None or type(value) in (int, float, str, bool)


def _name(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")


def _json_type(value: object) -> str:
    names = {type(None): "null", bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}
    return names.get(type(value), type(value).__name__)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
