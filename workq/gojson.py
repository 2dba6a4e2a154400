"""JSON encoded the way Go's encoding/json encodes it, so jobs and unique keys match gocraft/work byte for byte.

Go sorts map keys, writes no spaces, escapes `<` `>` `&` U+2028 U+2029, keeps other non-ASCII raw and writes a
whole float64 without `.0`. Non-whole floats below 1e-4 are written in Python's exponent form, which Go writes
positionally; readers on both sides accept either.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def dumps(value: Any) -> str:
    """Encode `value` as Go would; raise `TypeError` for anything JSON cannot hold exactly."""
    normalised = _normalise(value, path="args")
    encoded = json.dumps(normalised, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return encoded.translate(_GO_ESCAPES)


def _normalise(value: Any, path: str) -> Any:
    """Check that `value` is plain JSON and turn whole floats into ints, as Go prints them."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise TypeError(f"{path} is not valid Unicode text: {exc.reason}") from None
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{path} is {value!r}: JSON has no NaN or infinity")
        if value.is_integer() and abs(value) < 1e21:
            # Go prints the shortest digits that round-trip, zero-padded: 2**60 as 1152921504606847000.
            return int(value) if abs(value) < 2**53 else int(Decimal(repr(value)))
        return value
    if isinstance(value, dict):
        normalised: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path} has key {key!r} of type {type(key).__name__}: JSON keys are strings")
            normalised[key] = _normalise(item, f"{path}[{key!r}]")
        return normalised
    if isinstance(value, (list, tuple)):
        return [_normalise(item, f"{path}[{index}]") for index, item in enumerate(value)]
    raise TypeError(f"{path} is a {type(value).__name__}, which is not JSON-serialisable")
