"""The scheduled set split in two for people: one-off jobs (`enqueue_in`, `Retry`) and cron ticks, each paged in
time order. Ticks are few (each schedule adds at most the next four minutes of them), so they are found with one
`ZSCAN … MATCH` walk; a page of one-off jobs is then one `ZRANGE` wide enough to skip them, however many ticks come
before it (no `ZRANK`: a namespace's ACL user needs no command beyond those it already has)."""

from __future__ import annotations

import json
from typing import Literal, cast

from workq.connection import RedisClient
from workq.schedules import parse_tick

ScheduledKind = Literal["all", "one_off", "cron"]
KINDS: tuple[ScheduledKind, ...] = ("all", "one_off", "cron")
TICK_PATTERN = '*"id":"periodic:*'
"""Every tick's bytes match (`"id":"periodic:…"`); args holding that text match too and are told apart by decoding."""
SCAN_COUNT = 1000

Entry = tuple[bytes, float]


def tick_entries(client: RedisClient, zset: str) -> list[Entry]:
    """Every cron tick in `zset` with its score, in the set's order (score, then bytes)."""
    found: dict[bytes, float] = {}
    for member, score in client.zscan_iter(zset, match=TICK_PATTERN, count=SCAN_COUNT):
        if _is_tick(member):
            found[member] = float(score)
    return sorted(found.items(), key=lambda entry: (entry[1], entry[0]))


def page_of(client: RedisClient, zset: str, page: int, size: int, kind: ScheduledKind) -> tuple[list[Entry], int]:
    """Page `page` (from 1) of the one-off jobs or of the ticks in `zset`, and how many of that kind there are."""
    ticks = tick_entries(client, zset)
    start = (page - 1) * size
    if kind == "cron":
        return ticks[start : start + size], len(ticks)
    window = cast(list[Entry], client.zrange(zset, start, start + size + len(ticks) - 1, withscores=True))
    total = int(client.zcard(zset)) - len(ticks)
    if not window:
        return [], max(0, total)
    # The one-off job at index `start` sits at rank `start` plus the ticks ranked before it. Those ticks are the
    # ones that sort before the window's first entry (score, then bytes: Redis's order), so as many one-off jobs
    # at the head of the window are before index `start`.
    first = (float(window[0][1]), window[0][0])
    ticks_before = sum(1 for member, score in ticks if (score, member) < first)
    tick_members = {member for member, _ in ticks}
    one_off = [(member, score) for member, score in window if member not in tick_members and not _is_tick(member)]
    return one_off[ticks_before : ticks_before + size], max(0, total)


def _is_tick(member: bytes) -> bool:
    try:
        job_id = json.loads(member).get("id")
    except (ValueError, AttributeError, RecursionError):
        return False
    return isinstance(job_id, str) and parse_tick(job_id) is not None
