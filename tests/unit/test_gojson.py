"""Go-style JSON: the bytes gocraft/work writes for the same value."""

from __future__ import annotations

import pytest

from workq import gojson
from workq.keys import Keys


def test_keys_are_sorted_and_there_are_no_spaces() -> None:
    assert gojson.dumps({"b": 1, "a": [1, 2], "c": "x y"}) == '{"a":[1,2],"b":1,"c":"x y"}'


def test_nested_dicts_are_sorted_too() -> None:
    assert gojson.dumps({"z": {"y": 1, "x": {"b": 2, "a": 1}}}) == '{"z":{"x":{"a":1,"b":2},"y":1}}'


def test_html_characters_are_escaped_as_go_does() -> None:
    assert gojson.dumps({"s": "<a>&</a>"}) == r'{"s":"\u003ca\u003e\u0026\u003c/a\u003e"}'


def test_html_characters_in_keys_are_escaped_too() -> None:
    assert gojson.dumps({"<&>": 1}) == r'{"\u003c\u0026\u003e":1}'


def test_line_and_paragraph_separators_are_escaped() -> None:
    assert gojson.dumps({"s": "a\u2028b\u2029c"}) == r'{"s":"a\u2028b\u2029c"}'


def test_other_non_ascii_is_written_raw() -> None:
    assert gojson.dumps({"s": "héllo 世界 🎉"}) == '{"s":"héllo 世界 🎉"}'


def test_quotes_backslashes_and_newlines_are_escaped() -> None:
    assert gojson.dumps({"s": 'a"b\\c\nd'}) == r'{"s":"a\"b\\c\nd"}'


@pytest.mark.parametrize(("value", "encoded"), [(3.0, "3"), (-2.0, "-2"), (0.0, "0"), (1e20, "100000000000000000000")])
def test_whole_floats_are_written_without_fraction(value: float, encoded: str) -> None:
    assert gojson.dumps({"n": value}) == f'{{"n":{encoded}}}'


def test_non_whole_floats_keep_their_fraction() -> None:
    assert gojson.dumps({"n": 1.5, "m": -0.25}) == '{"m":-0.25,"n":1.5}'


def test_huge_floats_use_exponent_form_like_go() -> None:
    assert gojson.dumps({"n": 1e21}) == '{"n":1e+21}'


def test_whole_floats_beyond_2_pow_53_use_shortest_digits_like_go() -> None:
    assert gojson.dumps({"n": float(2**60)}) == '{"n":1152921504606847000}'


def test_scalars_lists_and_tuples_encode_as_json() -> None:
    assert (
        gojson.dumps({"t": True, "f": False, "n": None, "l": (1, "a")}) == '{"f":false,"l":[1,"a"],"n":null,"t":true}'
    )


def test_large_ints_are_exact() -> None:
    assert gojson.dumps({"n": 2**63 - 1}) == '{"n":9223372036854775807}'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats_are_refused(value: float) -> None:
    with pytest.raises(TypeError, match="NaN or infinity"):
        gojson.dumps({"n": value})


@pytest.mark.parametrize("key", [1, None, ("a",), 1.5])
def test_non_string_keys_are_refused(key: object) -> None:
    with pytest.raises(TypeError, match="JSON keys are strings"):
        gojson.dumps({key: 1})


@pytest.mark.parametrize("value", [{1, 2}, b"bytes", object(), frozenset()])
def test_values_json_cannot_hold_are_refused(value: object) -> None:
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        gojson.dumps({"v": value})


def test_error_message_names_the_path_to_the_bad_value() -> None:
    with pytest.raises(TypeError, match=r"args\['a'\]\[1\]\['b'\]"):
        gojson.dumps({"a": [0, {"b": float("nan")}]})


def test_error_message_names_the_path_to_a_bad_key() -> None:
    with pytest.raises(TypeError, match=r"args\['outer'\] has key 3"):
        gojson.dumps({"outer": {3: "x"}})


# Go's encoding/json output for each float64, recorded from Go 1.19 (`json.NewEncoder(w).Encode(f)`, newline cut);
# its floatEncoder is unchanged since Go 1.8: shortest round-trip digits, 'f' format unless the value is non-zero
# and below 1e-6 or from 1e21 on, where it is 'e' format with a one-digit negative exponent left unpadded.
GO_FLOATS = [
    (0.0, "0"),
    (-0.0, "-0"),
    (1.0, "1"),
    (-1.0, "-1"),
    (100.0, "100"),
    (1.5, "1.5"),
    (-0.25, "-0.25"),
    (0.1, "0.1"),
    (0.1 + 0.2, "0.30000000000000004"),
    (1 / 3, "0.3333333333333333"),
    (4.35, "4.35"),
    (123456789.125, "123456789.125"),
    (0.0001, "0.0001"),
    (0.00015, "0.00015"),
    (0.00001, "0.00001"),
    (0.000015, "0.000015"),
    (-0.000025, "-0.000025"),
    (0.0000123, "0.0000123"),
    (0.00123456789, "0.00123456789"),
    (0.000001, "0.000001"),
    (0.0000015, "0.0000015"),
    (9.99e-7, "9.99e-7"),
    (7e-7, "7e-7"),
    (1e-7, "1e-7"),
    (1.5e-7, "1.5e-7"),
    (1e-9, "1e-9"),
    (1e-10, "1e-10"),
    (1.23e-100, "1.23e-100"),
    (2.2250738585072014e-308, "2.2250738585072014e-308"),
    (1e-323, "1e-323"),
    (5e-324, "5e-324"),
    (1e15, "1000000000000000"),
    (1e16, "10000000000000000"),
    (1.5e16, "15000000000000000"),
    (2.0**53, "9007199254740992"),
    (2.0**53 + 2, "9007199254740994"),
    (2.0**60, "1152921504606847000"),
    (2.0**63, "9223372036854776000"),
    (1e20, "100000000000000000000"),
    (9.999999999999999e20, "999999999999999900000"),
    (1e21, "1e+21"),
    (-1e21, "-1e+21"),
    (1.5e21, "1.5e+21"),
    (1.2345e22, "1.2345e+22"),
    (1e100, "1e+100"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
]


@pytest.mark.parametrize(("value", "encoded"), GO_FLOATS)
def test_floats_are_written_as_go_writes_them(value: float, encoded: str) -> None:
    assert gojson.dumps({"n": value}) == f'{{"n":{encoded}}}'
    assert gojson.dumps([value]) == f"[{encoded}]"


def test_small_float_args_give_the_unique_key_a_gocraft_worker_computes() -> None:
    key = Keys("ns").unique_for("report", {"ratio": 0.00001, "eps": 1.5e-05, "tiny": 1e-07})
    assert key == 'ns:unique:report:{"eps":0.000015,"ratio":0.00001,"tiny":1e-7}\n'


def test_float_subclasses_are_written_by_value() -> None:
    class Loud(float):
        def __repr__(self) -> str:
            return "LOUD"

    assert gojson.dumps({"n": Loud(0.00001)}) == '{"n":0.00001}'


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("\b\f", r"\b\f"),  # Go 1.22 and later; Go 1.21 and earlier wrote \u0008\u000c
        ("\n\r\t", r"\n\r\t"),
        ("\x00\x01\x1b\x1f", r"\u0000\u0001\u001b\u001f"),
        ("\x7f\x85\ufeff", "\x7f\x85\ufeff"),
    ],
)
def test_control_characters_are_escaped_as_go_1_22_escapes_them(text: str, encoded: str) -> None:
    assert gojson.dumps({"s": text}) == f'{{"s":"{encoded}"}}'


def test_surrogates_in_keys_are_refused() -> None:
    with pytest.raises(TypeError, match="not valid Unicode text"):
        gojson.dumps({"\ud800": 1})


def _nested(levels: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_args_may_nest_max_depth_levels() -> None:
    assert gojson.dumps(_nested(gojson.MAX_DEPTH)) == '{"a":' * (gojson.MAX_DEPTH - 1) + "{}" + "}" * (
        gojson.MAX_DEPTH - 1
    )


@pytest.mark.parametrize("levels", [gojson.MAX_DEPTH + 1, 600, 50_000])
def test_deeper_args_are_refused_with_type_error(levels: int) -> None:
    with pytest.raises(TypeError, match=f"args may nest at most {gojson.MAX_DEPTH} levels"):
        gojson.dumps(_nested(levels))


def test_arrays_count_as_levels_too() -> None:
    value: list[object] = []
    for _ in range(gojson.MAX_DEPTH - 1):
        value = [value]
    gojson.dumps({"a": value[0]})
    with pytest.raises(TypeError, match="nest"):
        gojson.dumps({"a": value})


def test_args_that_contain_themselves_are_refused() -> None:
    args: dict[str, object] = {}
    args["self"] = args
    with pytest.raises(TypeError, match="contains itself"):
        gojson.dumps(args)


@pytest.mark.parametrize(
    ("value", "before_go_1_22"),
    [
        ({"a": "x\by\fz"}, '{"a":"x\\u0008y\\u000cz"}'),
        ({"k\b": 1}, '{"k\\u0008":1}'),
        ({"a": "\\b\\f"}, '{"a":"\\\\b\\\\f"}'),  # a backslash then b: no escape to rewrite
        ({"a": "\\\b"}, '{"a":"\\\\\\u0008"}'),  # a backslash then U+0008
        ({"a": "plain"}, '{"a":"plain"}'),
    ],
)
def test_encodings_before_go_1_22_spell_backspace_and_form_feed_long(value: object, before_go_1_22: str) -> None:
    assert gojson.as_before_go_1_22(gojson.dumps(value)) == before_go_1_22
