"""The scheduled set split in two for people: one-off jobs (`enqueue_in`, `Retry`) and cron ticks, each paged in
time order. Ticks are few (each schedule adds at most the next four minutes of them), so they are found with one
`ZSCAN … MATCH` walk and placed with `ZRANK`; a page of one-off jobs is then one `ZRANGE` that skips them, however
many ticks come before it."""

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
    pipe = client.pipeline(transaction=False)
    for member, _ in ticks:
        pipe.zrank(zset, member)
    pipe.zcard(zset)
    *ranks, total = pipe.execute()
    tick_ranks = sorted(rank for rank in ranks if rank is not None)
    rank = start  # the rank of the start-th one-off job: one further for every tick at or before it
    for tick_rank in tick_ranks:
        if tick_rank > rank:
            break
        rank += 1
    tick_members = {member for member, _ in ticks}
    window = cast(list[Entry], client.zrange(zset, rank, rank + size + len(tick_ranks) - 1, withscores=True))
    one_off = [(member, score) for member, score in window if member not in tick_members and not _is_tick(member)]
    return one_off[:size], max(0, int(total) - len(tick_ranks))


def _is_tick(member: bytes) -> bool:
    try:
        job_id = json.loads(member).get("id")
    except (ValueError, AttributeError, RecursionError):
        return False
    return isinstance(job_id, str) and parse_tick(job_id) is not None
