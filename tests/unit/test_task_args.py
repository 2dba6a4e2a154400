"""Typed task arguments: what decoration refuses, how job args bind to parameters at run time (`ArgsMismatch` with
every problem named), and how enqueue calls map to args (`TypeError` before Redis is touched)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, Literal

import pytest

from workq import ArgError, ArgsMismatch, Job, WorkerPool
from workq.task import job_handler
from workq.task_args import ArgSpec


class Point:
    pass


def takes_star_args(*values: int) -> None: ...
def takes_star_kwargs(**values: int) -> None: ...
def takes_positional_only(a: int, /) -> None: ...
def takes_unannotated(a) -> None: ...  # type: ignore[no-untyped-def]
def takes_a_class(p: Point) -> None: ...
def takes_int_keys(d: dict[int, str]) -> None: ...
def takes_a_tuple(t: tuple[int, int]) -> None: ...
def takes_a_set(s: set[str]) -> None: ...
def takes_a_bad_default(n: int = "three") -> None: ...  # type: ignore[assignment]
def takes_a_bad_literal(mode: Literal[b"raw"]) -> None: ...
def yields_values(n: int) -> Iterator[int]:
    yield n


async def yields_values_async(n: int) -> AsyncIterator[int]:
    yield n


def takes_an_unknown_name(x: Undefined) -> None: ...  # type: ignore[name-defined]  # noqa: F821


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (takes_star_args, r"'values' is variadic positional"),
        (takes_star_kwargs, r"'values' is variadic keyword"),
        (takes_positional_only, r"'a' is positional-only"),
        (takes_unannotated, r"'a' has no annotation"),
        (takes_a_class, r"parameter 'p'.*Point cannot be a JSON argument"),
        (takes_int_keys, r"JSON object keys are strings"),
        (takes_a_tuple, r"tuple\[int, int\] cannot be a JSON argument"),
        (takes_a_set, r"set\[str\] cannot be a JSON argument"),
        (takes_a_bad_default, r"the default of 'n' is not int"),
        (takes_a_bad_literal, r"cannot be a JSON argument"),
        (takes_an_unknown_name, r"cannot read the annotations"),
    ],
)
def test_parameters_that_cannot_be_json_args_are_refused_at_decoration(fn: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        ArgSpec(fn, "t")
    pool = WorkerPool("ns", "redis://127.0.0.1:1/0")
    with pytest.raises(TypeError, match=message):
        pool.task(fn)
    assert pool.job_names == [], "nothing registered"


def declared_awaitable(n: int) -> Awaitable[None]:
    return asyncio.sleep(n)


@pytest.mark.parametrize("fn", [yields_values, yields_values_async, declared_awaitable])
def test_what_the_pool_could_not_run_is_refused_at_decoration(fn: Any) -> None:
    pool = WorkerPool("ns", "redis://127.0.0.1:1/0")
    with pytest.raises(TypeError, match=r"its body would never run|declared to return an awaitable"):
        pool.task(fn)
    assert pool.job_names == []


def everything(  # noqa: PLR0917
    n: int,
    x: float,
    s: str,
    flag: bool,
    nothing: None,
    items: list[int],
    table: dict[str, list[float]],
    maybe: str | None,
    either: int | str,
    new_union: int | float,
    mode: Literal["fast", "slow"],
    anything: Any,
    plain_list: list,  # type: ignore[type-arg]
    plain_dict: dict,  # type: ignore[type-arg]
    retries: int = 3,
) -> None: ...


GOOD: dict[str, Any] = {
    "n": 1,
    "x": 2.5,
    "s": "é",
    "flag": False,
    "nothing": None,
    "items": [1, 2],
    "table": {"a": [1.5, 2]},
    "maybe": None,
    "either": "e",
    "new_union": 3,
    "mode": "slow",
    "anything": {"deep": [1, None]},
    "plain_list": [1, "a"],
    "plain_dict": {"k": []},
}


def test_json_args_bind_by_name_and_defaults_apply() -> None:
    params = ArgSpec(everything, "t").to_params(GOOD, "t 1")
    assert params == GOOD, "a missing argument with a default is left to the function's default"
    assert type(params["new_union"]) is int, "an option the value fits as is wins over a conversion"


def test_numbers_convert_as_json_numbers_do() -> None:
    spec = ArgSpec(everything, "t")
    params = spec.to_params({**GOOD, "x": 2, "n": 4.0, "retries": 7}, "t 1")
    assert params["x"] == 2.0 and type(params["x"]) is float, "an int is accepted for a float"
    assert params["n"] == 4 and type(params["n"]) is int, "an integral float (Go's float64) for an int"
    assert params["retries"] == 7


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"n": True}, "argument 'n' should be int, got bool True"),
        ({"n": 1.5}, "argument 'n' should be int, got float 1.5"),
        ({"x": False}, "argument 'x' should be float, got bool False"),
        ({"flag": 1}, "argument 'flag' should be bool, got int 1"),
        ({"s": None}, "argument 's' should be str, got null None"),
        ({"nothing": 0}, "argument 'nothing' should be null, got int 0"),
        ({"items": [1, "2"]}, "argument 'items'[1] should be int, got str '2'"),
        ({"table": {"a": [1, "x"]}}, "argument 'table'['a'][1] should be float, got str 'x'"),
        ({"table": [1]}, "argument 'table' should be dict[str, list[float]], got list [1]"),
        ({"maybe": 5}, "argument 'maybe' should be str | null, got int 5"),
        ({"either": 1.5}, "argument 'either' should be int | str, got float 1.5"),
        ({"mode": "medium"}, "argument 'mode' should be 'fast' | 'slow', got str 'medium'"),
        ({"plain_list": {}}, "argument 'plain_list' should be list, got dict {}"),
    ],
)
def test_a_mismatch_names_the_argument_and_what_it_should_be(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ArgsMismatch) as raised:
        ArgSpec(everything, "t").to_params({**GOOD, **changes}, "t 1a2b")
    assert str(raised.value) == f"job t 1a2b: args do not fit task 't': {problem}"
    assert isinstance(raised.value, ArgError)


def test_missing_and_unknown_arguments_are_all_named() -> None:
    args = {key: value for key, value in GOOD.items() if key not in ("n", "s")}
    with pytest.raises(ArgsMismatch) as raised:
        ArgSpec(everything, "t").to_params({**args, "extra": 1}, "t 1")
    assert str(raised.value).endswith("unknown argument 'extra'; missing argument 'n'; missing argument 's'")


def greet(name: str, punctuation: str = "!", *, times: int = 1) -> str:
    return (name + punctuation) * times


def test_enqueue_calls_map_positional_args_to_names_and_leave_defaults_out() -> None:
    spec = ArgSpec(greet, "greet")
    assert spec.to_args(("ada", "?"), {"times": 2}) == {"name": "ada", "punctuation": "?", "times": 2}
    assert spec.to_args(("ada",), {}) == {"name": "ada"}


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {"nam": "ada"}, r"task 'greet': missing a required argument: 'name'"),
        (("ada",), {"tims": 2}, r"unexpected keyword argument 'tims'"),
        (("ada", "!", 3), {}, r"too many positional arguments"),
        ((1,), {}, r"task 'greet': argument 'name' should be str, got int 1"),
        (("ada",), {"times": "2"}, r"argument 'times' should be int, got str '2'"),
    ],
)
def test_wrong_enqueue_calls_raise_type_error(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        ArgSpec(greet, "greet").to_args(args, kwargs)


def test_the_decorated_task_keeps_calling_the_function_and_registers_its_name() -> None:
    pool = WorkerPool("ns", "redis://127.0.0.1:1/0")
    task = pool.task(greet)

    def upper(text: str) -> str:
        return text.upper()

    renamed = pool.task(name="shout", max_fails=2)(upper)
    assert task("ada", times=2) == "ada!ada!"
    assert task.name == "greet" and task.__name__ == "greet" and task.__doc__ == greet.__doc__
    assert renamed.name == "shout"
    assert pool.job_names == ["greet", "shout"]
    assert pool._handlers["shout"].options.max_fails == 2
    with pytest.raises(ValueError, match="already registered"):
        pool.task(greet)
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_fail'"):
        pool.task(name="other", max_fail=2)(greet)


def test_the_pool_runs_the_function_with_the_jobs_args_bound() -> None:
    handler = job_handler(greet, ArgSpec(greet, "greet"))
    assert handler(Job(name="greet", args={"name": "ada", "times": 2})) == "ada!ada!"
    with pytest.raises(ArgsMismatch, match=r"job greet \w+: args do not fit task 'greet': missing argument 'name'"):
        handler(Job(name="greet", args={}))


async def fetch(url: str, attempts: int = 1) -> str:
    await asyncio.sleep(0)
    return f"{url}x{attempts}"


def test_an_async_function_gets_an_async_handler_binding_the_same_way() -> None:
    pool = WorkerPool("ns", "redis://127.0.0.1:1/0")
    task = pool.task(fetch)
    handler = pool._handlers["fetch"].fn
    assert inspect.iscoroutinefunction(handler), "the pool runs it on its event loop"
    assert asyncio.run(handler(Job(name="fetch", args={"url": "u", "attempts": 2}))) == "ux2"
    with pytest.raises(ArgsMismatch, match="argument 'url' should be str, got int 5"):
        asyncio.run(handler(Job(name="fetch", args={"url": 5})))
    assert asyncio.run(task("v")) == "vx1", "calling the task calls the function"
