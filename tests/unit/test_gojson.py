"""Go-style JSON: the bytes gocraft/work writes for the same value."""

from __future__ import annotations

import pytest

from workq import gojson


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
