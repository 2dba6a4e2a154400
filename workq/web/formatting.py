"""How values look on the pages: ages, durations, UTC times, percentages and pretty-printed JSON.

Every filter returns plain text; Jinja's autoescaping makes it safe, so nothing here ever returns markup."""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Flask

from workq.entry_checks import LAST_EPOCH

UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
INLINE_WIDTH = 48
"""Widest nested JSON value (with its indent) kept on one line: about what the args column shows unwrapped."""
OPENED_LEVELS = 24
"""Deeper than this, nested JSON is shown compact: a hostile value nested hundreds deep stays one block."""
SHOWN_CHARS = 20_000
"""Text longer than this (a huge payload) is cut, saying how much was left out, so one entry cannot swamp a page."""
NOT_A_TIME = "not a time"


def duration(seconds: int) -> str:
    """`0s`, `42s`, `3m 05s`, `2h 10m`, `4d 03h`: the two largest units, enough to read at a glance."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    parts: list[str] = []
    for unit, size in UNITS:
        if seconds >= size or parts:
            value, seconds = divmod(seconds, size)
            parts.append(f"{value:02d}{unit}" if parts else f"{value}{unit}")
        if len(parts) == 2:
            break
    return " ".join(parts)


def relative(epoch: int, now: int) -> str:
    """`5s ago`, `in 3m 10s`, or `now`; `-` for a missing time (0), `not a time` outside 1970-9999."""
    if not epoch:
        return "-"
    if not 0 < epoch <= LAST_EPOCH:
        return NOT_A_TIME
    if epoch == now:
        return "now"
    return f"{duration(now - epoch)} ago" if epoch < now else f"in {duration(epoch - now)}"


def utc(epoch: int) -> str:
    if not epoch:
        return "-"
    if not 0 < epoch <= LAST_EPOCH:
        return f"{NOT_A_TIME}: {clipped(str(epoch), 40)}"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def percent(rate: float | None) -> str:
    """`-` when nothing ran; otherwise one decimal below 10 % so a small error rate does not read as zero."""
    if rate is None:
        return "-"
    value = rate * 100
    return f"{value:.1f}%" if 0 < value < 10 else f"{value:.0f}%"


def rate_level(rate: float | None) -> str:
    """A CSS class for an error rate: `none` (nothing ran), `ok`, `warn` (at least 1 %) or `bad` (at least 10 %)."""
    if rate is None:
        return "none"
    if rate < 0.01:
        return "ok"
    return "warn" if rate < 0.1 else "bad"


def pretty_json(value: Any) -> str:
    """JSON indented two spaces a level, except that a nested value short enough to read on one line stays on
    one (`"sizes": [320, 1280]` rather than four lines); the top-level object is always opened up. Never raises:
    a value nested too deep to encode says so, and very long text is cut."""
    try:
        return clipped(_pretty(value, 0))
    except RecursionError:
        return "(nested too deep to show)"


def _pretty(value: Any, depth: int) -> str:
    compact = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if (
        not isinstance(value, (dict, list))
        or not value
        or depth > OPENED_LEVELS
        or (depth and len(compact) + 2 * depth <= INLINE_WIDTH)
    ):
        return compact
    inner = "  " * (depth + 1)
    if isinstance(value, dict):
        items = [
            f"{inner}{json.dumps(key, ensure_ascii=False)}: {_pretty(item, depth + 1)}" for key, item in value.items()
        ]
        opening, closing = "{", "}"
    else:
        items = [f"{inner}{_pretty(item, depth + 1)}" for item in value]
        opening, closing = "[", "]"
    return opening + "\n" + ",\n".join(items) + "\n" + "  " * depth + closing


def pretty_json_text(text: str) -> str:
    """JSON held as text (a worker observation's args) pretty-printed; text that is not JSON is shown as is."""
    if not text:
        return "{}"
    try:
        return pretty_json(json.loads(text))
    except (ValueError, RecursionError):
        return clipped(text)


def clipped(text: str, keep: int = SHOWN_CHARS) -> str:
    """`text`, or its first `keep` characters and how many more there were."""
    return text if len(text) <= keep else f"{text[:keep]}… ({len(text) - keep} more characters)"


def short_id(value: str, keep: int = 8) -> str:
    return value if len(value) <= keep + 1 else value[:keep] + "…"


def install(app: Flask) -> None:
    app.jinja_env.filters.update(
        duration=duration,
        relative=relative,
        utc=utc,
        percent=percent,
        rate_level=rate_level,
        pretty_json=pretty_json,
        pretty_json_text=pretty_json_text,
        short_id=short_id,
    )
