"""Job: wire JSON in gocraft/work's field order, tolerant parsing, typed args, name checks and views."""

from __future__ import annotations

import json
import re

import pytest

from workq import gojson
from workq.errors import ArgError, MalformedJob
from workq.job import (
    DeadJob,
    Job,
    RetryJob,
    ScheduledJob,
    check_args,
    check_job_name,
    malformed_job_record,
    new_job_id,
)
from workq.keys import Keys

JOB_ID = "5f0c9a1e2b3d4c5e6f708192"
HEX_24 = re.compile(r"[0-9a-f]{24}")


# --- to_json -----------------------------------------------------------------------------------------------


def test_to_json_matches_the_wire_format_example() -> None:
    job = Job(name="send_email", id=JOB_ID, enqueued_at=1763800000, args={"address": "a@b.c"})
    assert job.to_json() == (
        '{"name":"send_email","id":"5f0c9a1e2b3d4c5e6f708192","t":1763800000,"args":{"address":"a@b.c"}}'
    )


def test_to_json_writes_every_field_in_go_order() -> None:
    job = Job(
        name="n",
        id="i",
        enqueued_at=1,
        args={"a": 1},
        unique=True,
        unique_key="k",
        fails=2,
        last_err="boom",
        failed_at=3,
    )
    assert job.to_json() == (
        '{"name":"n","id":"i","t":1,"args":{"a":1},"unique":true,"unique_key":"k","fails":2,"err":"boom","failed_at":3}'
    )


def test_to_json_omits_empty_optional_fields_but_keeps_id_t_and_args() -> None:
    assert Job(name="n", id="", enqueued_at=0).to_json() == '{"name":"n","id":"","t":0,"args":{}}'


def test_to_json_writes_null_args_when_there_are_none() -> None:
    assert Job(name="n", id="i", enqueued_at=5, args_null=True).to_json() == '{"name":"n","id":"i","t":5,"args":null}'


def test_to_json_writes_integer_times_even_from_floats() -> None:
    job = Job(name="n", id="i", enqueued_at=1700000000.7, fails=1, failed_at=1700000001.2)  # type: ignore[arg-type]
    assert job.to_json() == '{"name":"n","id":"i","t":1700000000,"args":{},"fails":1,"failed_at":1700000001}'


def test_to_json_escapes_strings_the_go_way() -> None:
    job = Job(name="n", id="i", last_err="<x> & \u2028 é")
    assert r'"err":"\u003cx\u003e \u0026 \u2028 é"' in job.to_json()


# --- from_json ---------------------------------------------------------------------------------------------


def test_round_trip_is_byte_identical() -> None:
    wire = (
        '{"name":"n","id":"i","t":1,"args":{"a":[1,2]},"unique":true,"unique_key":"k",'
        '"fails":2,"err":"boom","failed_at":3}'
    )
    assert Job.from_json(wire).to_json() == wire


def test_round_trip_keeps_go_negative_zero() -> None:
    """Go writes a float64 -0 as `-0`; read as the int 0 it came back as `0`, and the unique key derived from a
    gocraft/work v0.5.1 job's args missed the lock Go took (`..."y":-0}`), which then blocked the job for 24 h."""
    wire = '{"name":"n","id":"i","t":1,"args":{"x":0.000015,"y":-0,"z":[-0,0]},"unique":true}'
    job = Job.from_json(wire)
    assert job.to_json() == wire
    assert Keys("ns").unique_for(job.name, job.args) == 'ns:unique:n:{"x":0.000015,"y":-0,"z":[-0,0]}\n'


def test_round_trip_keeps_null_args_null() -> None:
    wire = '{"name":"n","id":"i","t":1,"args":null}'
    assert Job.from_json(wire).to_json() == wire


def test_round_trip_keeps_empty_args_an_object() -> None:
    wire = '{"name":"n","id":"i","t":1,"args":{}}'
    assert Job.from_json(wire).to_json() == wire


def test_round_trip_preserves_unknown_fields() -> None:
    job = Job.from_json('{"name":"n","id":"i","t":1,"args":null,"trace":{"b":1,"a":2},"x":"y"}')
    assert job.extra == {"trace": {"b": 1, "a": 2}, "x": "y"}
    assert json.loads(job.to_json()) == {
        "name": "n",
        "id": "i",
        "t": 1,
        "args": None,
        "trace": {"a": 2, "b": 1},
        "x": "y",
    }


def test_from_json_reads_every_field() -> None:
    job = Job.from_json(
        b'{"name":"n","id":"i","t":7,"args":{"a":1},"unique":true,"unique_key":"k","fails":2,"err":"e","failed_at":9}'
    )
    assert (job.name, job.id, job.enqueued_at, job.args) == ("n", "i", 7, {"a": 1})
    assert (job.unique, job.unique_key, job.fails, job.last_err, job.failed_at) == (True, "k", 2, "e", 9)


def test_from_json_accepts_any_key_order() -> None:
    job = Job.from_json('{"args":{"a":1},"t":5,"id":"i","name":"n"}')
    assert job.to_json() == '{"name":"n","id":"i","t":5,"args":{"a":1}}'


def test_from_json_accepts_escaped_slashes_from_lua_cjson() -> None:
    job = Job.from_json(r'{"name":"n","id":"i","t":1,"args":{"url":"http:\/\/x\/y"}}')
    assert job.arg_str("url") == "http://x/y"


def test_from_json_accepts_float_times_from_lua_cjson() -> None:
    job = Job.from_json('{"name":"n","id":"i","t":1700000000.0,"args":null,"fails":1.0,"failed_at":1700000001.0}')
    assert (job.enqueued_at, job.fails, job.failed_at) == (1700000000, 1, 1700000001)
    assert '"t":1700000000,' in job.to_json()


def test_from_json_treats_missing_optional_fields_as_zero() -> None:
    job = Job.from_json('{"name":"n"}')
    assert (job.id, job.enqueued_at, job.args, job.unique, job.fails, job.last_err) == ("", 0, {}, False, 0, "")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        ("[1,2]", "JSON object"),
        ('"job"', "JSON object"),
        ('{"id":"i","t":1}', "no name"),
        ('{"name":"","id":"i"}', "no name"),
        ('{"name":"n","args":[1]}', "args must be a JSON object"),
        ('{"name":"n","args":"x"}', "args must be a JSON object"),
        ('{"name":5}', "'name'"),
        ('{"name":"n","id":5}', "'id'"),
        ('{"name":"n","t":"now"}', "'t'"),
        ('{"name":"n","t":true}', "'t'"),
        ('{"name":"n","fails":"1"}', "'fails'"),
        ('{"name":"n","unique":"yes"}', "'unique'"),
        ('{"name":"n","err":1}', "'err'"),
        ('{"name":"n","failed_at":[1]}', "'failed_at'"),
    ],
)
def test_from_json_refuses_malformed_jobs(payload: str | bytes, message: str) -> None:
    with pytest.raises(MalformedJob, match=message):
        Job.from_json(payload)


@pytest.mark.parametrize(
    "payload",
    [
        '{"name":"n","id":"i","t":1e400,"args":null}',
        '{"name":"n","id":"i","t":1,"args":{"x":1e400}}',
        '{"name":"n","id":"i","t":1,"args":{"x":NaN}}',
        '{"name":"n","id":"i","t":1,"args":{"x":-Infinity}}',
        '{"name":"n","id":"i","t":1,"args":null,"extra":-1e999}',
    ],
)
def test_from_json_refuses_numbers_go_cannot_hold_as_malformed(payload: str) -> None:
    with pytest.raises(MalformedJob):
        Job.from_json(payload)


def _job_with_args_nested(levels: int, bracket: str = "[") -> str:
    """Job JSON whose args nest `levels` objects and arrays deep (args itself is level 1)."""
    closing = "]" if bracket == "[" else "}"
    inner = '{"x":1}' if bracket == "[" else "{}"
    opener = bracket if bracket == "[" else '{"a":'
    nested = opener * (levels - 2) + inner + closing * (levels - 2)
    return '{"name":"n","id":"i","t":1,"args":{"deep":' + nested + "}}"


def test_from_json_reads_args_nested_to_the_limit() -> None:
    for bracket in "[{":
        job = Job.from_json(_job_with_args_nested(gojson.MAX_DEPTH, bracket))
        assert job.to_json() == _job_with_args_nested(gojson.MAX_DEPTH, bracket)


@pytest.mark.parametrize("levels", [gojson.MAX_DEPTH + 1, 600, 100_000])
@pytest.mark.parametrize("bracket", ["[", "{"])
def test_from_json_refuses_args_nested_too_deep_as_malformed(levels: int, bracket: str) -> None:
    payload = _job_with_args_nested(levels, bracket)
    for form in (payload, payload.encode()):
        with pytest.raises(MalformedJob, match=f"nest too deep: args may nest at most {gojson.MAX_DEPTH} levels"):
            Job.from_json(form)


def test_from_json_refuses_deep_extra_fields_too() -> None:
    with pytest.raises(MalformedJob, match="nest too deep"):
        Job.from_json('{"name":"n","id":"i","t":1,"args":null,"note":' + "[" * 600 + "]" * 600 + "}")


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    job = Job.from_json('{"name":"n","id":"i","t":1,"args":{"s":"' + "[{" * 1000 + '"}}')
    assert job.args == {"s": "[{" * 1000}


def test_to_json_refuses_args_nested_too_deep() -> None:
    args: dict[str, object] = {}
    for _ in range(gojson.MAX_DEPTH):
        args = {"a": args}
    with pytest.raises(TypeError, match="nest"):
        Job(name="n", args=args).to_json()


def test_malformed_job_is_a_value_error_too() -> None:
    with pytest.raises(ValueError):
        Job.from_json("nope")


# --- ids ---------------------------------------------------------------------------------------------------


def test_new_ids_are_24_lowercase_hex_and_distinct() -> None:
    ids = {new_job_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(HEX_24.fullmatch(job_id) for job_id in ids)


def test_a_new_job_gets_a_fresh_id() -> None:
    assert HEX_24.fullmatch(Job(name="n").id)
    assert Job(name="n").id != Job(name="n").id


# --- typed args --------------------------------------------------------------------------------------------


def test_typed_accessors_return_values_of_the_right_type() -> None:
    job = Job(name="n", args={"s": "x", "i": 3, "f": 1.5, "b": True})
    assert (job.arg_str("s"), job.arg_int("i"), job.arg_float("f"), job.arg_bool("b")) == ("x", 3, 1.5, True)
    assert job.arg_error() is None


@pytest.mark.parametrize(
    ("accessor", "zero"), [("arg_str", ""), ("arg_int", 0), ("arg_float", 0.0), ("arg_bool", False)]
)
def test_missing_argument_gives_zero_value_and_records_a_problem(accessor: str, zero: object) -> None:
    job = Job(name="n", id="i")
    assert getattr(job, accessor)("absent") == zero
    problem = job.arg_error()
    assert isinstance(problem, ArgError)
    assert "missing argument 'absent'" in str(problem)


@pytest.mark.parametrize(
    ("accessor", "value", "zero"),
    [
        ("arg_str", 1, ""),
        ("arg_int", "1", 0),
        ("arg_int", True, 0),
        ("arg_int", 1.5, 0),
        ("arg_float", "1.5", 0.0),
        ("arg_float", True, 0.0),
        ("arg_bool", 1, False),
        ("arg_bool", "true", False),
    ],
)
def test_wrong_type_gives_zero_value_and_records_a_problem(accessor: str, value: object, zero: object) -> None:
    job = Job(name="n", args={"k": value})
    result = getattr(job, accessor)("k")
    assert result == zero and type(result) is type(zero)
    assert "argument 'k' should be" in str(job.arg_error())


def test_arg_int_accepts_whole_floats_as_go_and_cjson_write_them() -> None:
    job = Job(name="n", args={"k": 3.0})
    assert job.arg_int("k") == 3 and type(job.arg_int("k")) is int
    assert job.arg_error() is None


def test_arg_float_accepts_ints() -> None:
    job = Job(name="n", args={"k": 2})
    assert job.arg_float("k") == 2.0 and type(job.arg_float("k")) is float
    assert job.arg_error() is None


def test_arg_error_reports_only_the_first_problem() -> None:
    job = Job(name="n", args={"b": "x"})
    job.arg_int("a")
    job.arg_bool("b")
    assert "missing argument 'a'" in str(job.arg_error())


def test_arg_error_names_the_job() -> None:
    job = Job(name="send_email", id=JOB_ID)
    job.arg_str("address")
    assert f"send_email {JOB_ID}" in str(job.arg_error())


def test_good_reads_after_a_problem_do_not_clear_it() -> None:
    job = Job(name="n", args={"s": "x"})
    job.arg_str("absent")
    job.arg_str("s")
    assert job.arg_error() is not None


# --- names and args ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["send_email", "a.b-c", "Éclair", "x" * 200, "{braced}"])
def test_check_job_name_accepts_plain_names(name: str) -> None:
    assert check_job_name(name) == name


@pytest.mark.parametrize("name", ["a:b", "a b", "a\tb", "a\nb", "a\x00b", "a\x1bb", "a\x7fb", "a\u00a0b", "", ":"])
def test_check_job_name_refuses_colons_spaces_and_control_characters(name: str) -> None:
    with pytest.raises(ValueError):
        check_job_name(name)


@pytest.mark.parametrize("name", [None, 1, b"name", ["a"]])
def test_check_job_name_refuses_non_strings(name: object) -> None:
    with pytest.raises(TypeError):
        check_job_name(name)


def test_check_args_turns_none_into_an_empty_dict() -> None:
    assert check_args(None) == {}


def test_check_args_returns_a_valid_dict() -> None:
    args = {"a": [1, {"b": None}]}
    assert check_args(args) == args


@pytest.mark.parametrize("args", [[("a", 1)], "a=1", 1, ({"a": 1},)])
def test_check_args_refuses_non_dicts(args: object) -> None:
    with pytest.raises(TypeError, match="dict"):
        check_args(args)


@pytest.mark.parametrize("args", [{"a": {1, 2}}, {"a": float("nan")}, {1: "a"}, {"a": object()}])
def test_encoding_refuses_args_json_cannot_hold(args: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        Job(name="n", args=check_args(args)).to_json()


# --- views and dead records --------------------------------------------------------------------------------


@pytest.mark.parametrize(("view", "score"), [(ScheduledJob, "run_at"), (RetryJob, "retry_at"), (DeadJob, "died_at")])
def test_as_view_keeps_the_job_and_adds_its_score(view: type[Job], score: str) -> None:
    job = Job(name="n", id="i", enqueued_at=1, args={"a": 1}, fails=2, last_err="e", failed_at=3, extra={"x": 1})
    viewed = job.as_view(view, **{score: 99})
    assert isinstance(viewed, view)
    assert getattr(viewed, score) == 99
    assert viewed.to_json() == job.to_json()


def test_as_view_keeps_null_args_null() -> None:
    job = Job(name="n", id="i", args_null=True)
    assert '"args":null' in job.as_view(ScheduledJob, run_at=1).to_json()


def test_malformed_job_record_keeps_the_bytes_and_the_reason() -> None:
    record = malformed_job_record("q", b"\xffnot json", "bad bytes", now=1700000000)
    parsed = json.loads(record.to_json())
    assert parsed["name"] == "q"
    assert HEX_24.fullmatch(parsed["id"])
    assert (parsed["t"], parsed["args"], parsed["fails"], parsed["failed_at"]) == (1700000000, None, 1, 1700000000)
    assert parsed["err"] == "bad bytes"
    assert parsed["payload"] == "\ufffdnot json"


def test_malformed_job_record_is_itself_a_valid_job() -> None:
    record = malformed_job_record("q", "{oops", "reason", now=5)
    assert Job.from_json(record.to_json()).extra == {"payload": "{oops"}
