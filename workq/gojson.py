"""JSON encoded the way Go's encoding/json encodes it, so jobs and unique keys match gocraft/work byte for byte.

Go sorts map keys, writes no spaces, escapes `<` `>` `&` U+2028 U+2029, keeps other non-ASCII raw, writes `\\b` and
`\\f` in short form (Go 1.22 and later) and formats every float64 as its `floatEncoder` does: the shortest digits
that round-trip, positional from 1e-6 up to 1e21 (`0.00001`, `100`), exponent form outside it without padding
(`1e-7`, `1e+21`), and `-0` for negative zero.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

MAX_DEPTH = 100
"""How deeply args may nest objects and arrays (args itself is level 1): well inside Python's recursion limit,
whatever the caller's stack, and far beyond what a job needs."""

_SHORT_ESCAPE = re.compile(r"((?<!\\)(?:\\\\)*)\\([bf])")
_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def dumps(value: Any) -> str:
    """Encode `value` as Go would; raise `TypeError`, naming where, for anything JSON cannot hold exactly or that
    nests deeper than `MAX_DEPTH`."""
    parts: list[str] = []
    try:
        _encode(value, 0, parts)
    except _Refused as refused:
        trail = refused.trail[::-1]
        if len(trail) > 8:
            trail[4:-3] = ["…"]
        raise TypeError(f"args{''.join(trail)} {refused.reason}") from None
    # Go's HTML escapes apply to characters that can only occur inside strings, so one pass over the whole does.
    return "".join(parts).translate(_GO_ESCAPES)


def as_before_go_1_22(encoded: str) -> str:
    """`encoded` (this module's output) as Go 1.21 and earlier wrote it: U+0008 and U+000C as `\\u0008` and
    `\\u000c` instead of `\\b` and `\\f` (an escape is a backslash after an even run of escaped backslashes)."""
    return _SHORT_ESCAPE.sub(lambda match: match[1] + ("\\u0008" if match[2] == "b" else "\\u000c"), encoded)


def format_float(value: float) -> str:
    """A finite float64 as Go's encoding/json writes it (`strconv.FormatFloat` with 'f', or 'e' below 1e-6 and
    from 1e21, with the exponent's leading zero dropped)."""
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    shortest = float.__repr__(value)  # the shortest digits that round-trip, as Go's precision -1
    magnitude = abs(value)
    if magnitude < 1e-6 or magnitude >= 1e21:
        # repr is in exponent form here, as Go's: Go drops the exponent's padding zero (`e-7`, Python `e-07`).
        return shortest.replace("e-0", "e-")
    if "e" not in shortest:
        return shortest[:-2] if shortest.endswith(".0") else shortest
    return format(Decimal(shortest).normalize(), "f")  # 1e-05 → 0.00001, 1e+16 → 10000000000000000


class _Refused(Exception):
    """A value JSON cannot hold; `trail` collects the path to it, innermost first, as the error unwinds."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.trail: list[str] = []


def _encode(value: Any, depth: int, parts: list[str]) -> None:
    """Append `value`'s Go encoding to `parts`, checking that it is plain JSON no deeper than `MAX_DEPTH`."""
    if isinstance(value, str):
        parts.append(encode_basestring(_checked_text(value)))
    elif value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, int):
        parts.append(int.__repr__(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _Refused(f"is {value!r}: JSON has no NaN or infinity")
        parts.append(format_float(value))
    elif isinstance(value, (dict, list, tuple)):
        if depth >= MAX_DEPTH:
            raise _Refused(
                f"nests objects and arrays more than {MAX_DEPTH} levels deep (or contains itself): "
                f"args may nest at most {MAX_DEPTH} levels"
            )
        if isinstance(value, dict):
            _encode_object(value, depth + 1, parts)
        else:
            _encode_array(value, depth + 1, parts)
    else:
        raise _Refused(f"is a {type(value).__name__}, which is not JSON-serialisable")


def _encode_object(value: dict[Any, Any], depth: int, parts: list[str]) -> None:
    for key in value:
        if not isinstance(key, str):
            raise _Refused(f"has key {key!r} of type {type(key).__name__}: JSON keys are strings")
    parts.append("{")
    # Go sorts keys by their UTF-8 bytes, which for valid text is the order of code points, as `sorted` uses.
    for index, key in enumerate(sorted(value)):
        if index:
            parts.append(",")
        try:
            parts.append(encode_basestring(_checked_text(key)))
            parts.append(":")
            _encode(value[key], depth, parts)
        except _Refused as refused:
            refused.trail.append(f"[{key!r}]")
            raise
    parts.append("}")


def _encode_array(value: list[Any] | tuple[Any, ...], depth: int, parts: list[str]) -> None:
    parts.append("[")
    for index, item in enumerate(value):
        if index:
            parts.append(",")
        try:
            _encode(item, depth, parts)
        except _Refused as refused:
            refused.trail.append(f"[{index}]")
            raise
    parts.append("]")


def _checked_text(text: str) -> str:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _Refused(f"is not valid Unicode text: {exc.reason}") from None
    return text
