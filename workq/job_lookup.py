"""Finding a job by id wherever it is — scheduled, retrying, queued, running or dead — by paging through each place
in short commands (LRANGE / ZSCAN of `CHUNK` members), so that looking through a 1,000,000-job queue never blocks
Redis for other clients (measured in docs/job-control.md)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import cast

import redis

from workq.connection import RedisClient, reply_text
from workq.errors import MalformedJob
from workq.job import Job, malformed_job_record
from workq.keys import Keys

logger = logging.getLogger("workq")

CHUNK = 1000
"""Members read per command: about 0.3 ms of Redis time for 1000 jobs of 100 bytes, so other clients are served
between the pages of a long queue."""
SEARCH_PASSES = 2
"""A job that moves into a place already read while the others are read (fetched while its queue is paged, or
failed from running into retry) slips past one pass; the second pass finds it there."""
MALFORMED_PREFIX = "malformed-"
NO_ID_PREFIX = "no-id-"
JSON_SAFE = frozenset(map(chr, range(0x20, 0x7F))) - set('"\\<>&')
"""Characters every JSON writer (Go's included) writes as they are: an id made of them appears verbatim in its job."""


@dataclass(frozen=True)
class Location:
    """Where a job was seen: its state, the list or sorted set holding it and its exact bytes there."""

    state: str
    """"queued", "scheduled", "retry", "dead" or "running"."""
    key: str
    member: bytes
    job: Job
    score: float = 0.0
    """The sorted-set score (due time, retry time, death time); 0 for lists."""
    from_head: bool = True
    """For a list: whether the job sat nearer the head (the pushing end) than the tail when seen."""
    pool_id: str = ""
    """For a running job: the pool whose in-progress list holds it."""


def decode_member(member: bytes) -> Job:
    """A stored member as a job; bytes that are not one (including JSON nested too deep to parse) become a record
    with a stable id (`malformed-<hash>`), and so does a job without an id (`no-id-<hash>`), so they can be
    listed, found and deleted like any job."""
    try:
        job = Job.from_json(member)
    except (MalformedJob, RecursionError, ValueError) as exc:
        reason = str(exc) if isinstance(exc, MalformedJob) else f"{type(exc).__name__}: {exc}"
        record = malformed_job_record("unknown", member, f"malformed job: {reason}", 0)
        record.id = MALFORMED_PREFIX + _digest(member)
        return record
    if not job.id:
        job.id = missing_id(member)
    return job


def _digest(member: bytes) -> str:
    return hashlib.sha256(member).hexdigest()[:24]


def missing_id(member: bytes) -> str:
    """The id a job without one is listed, found, retried (keeping it) and deleted by."""
    return NO_ID_PREFIX + _digest(member)


def find_job(client: RedisClient, keys: Keys, job_id: str) -> Location | None:
    """Where job `job_id` is now, or None. The in-progress lists come first (they are short, and a running job is
    the one most often looked for), then the places in the order a job passes through them (scheduled, retry,
    queued, dead), so a job moving on while they are read is mostly met further on, else on the second pass."""
    for _ in range(SEARCH_PASSES):
        for look in (_running, _scheduled, _retry, _queued, _dead):
            found = look(client, keys, job_id)
            if found is not None:
                return found
    return None


def find_dead(client: RedisClient, keys: Keys, job_id: str) -> Location | None:
    return _dead(client, keys, job_id)


def find_in_queue(client: RedisClient, keys: Keys, job_name: str, job_id: str) -> Location | None:
    return _in_list(client, keys.queue(job_name), job_id, "queued")


def matching(members: Sequence[bytes], job_id: str) -> Iterator[tuple[int, bytes, Job]]:
    """The members of a page that are job `job_id`, with their positions. An id that JSON writes verbatim is
    looked for as bytes first, so a page without it costs no decoding."""
    if set(job_id) <= JSON_SAFE and not job_id.startswith((MALFORMED_PREFIX, NO_ID_PREFIX)):
        needle = job_id.encode()
        if needle not in b"\x00".join(members):
            return
        candidates = [(index, member) for index, member in enumerate(members) if needle in member]
    else:
        candidates = list(enumerate(members))
    for index, member in candidates:
        job = decode_member(member)
        if job.id == job_id:
            yield index, member, job


def _in_list(client: RedisClient, key: str, job_id: str, state: str, pool_id: str = "") -> Location | None:
    """Page through a list from its head. Pushes at the head only make a page be read again, and pops at the
    tail move nothing still unread, so a job that stays in the list is always seen."""
    start = 0
    while True:
        try:
            members = cast(list[bytes], client.lrange(key, start, start + CHUNK - 1))
        except redis.ResponseError as exc:  # a key of the wrong type holds no jobs
            logger.warning("looking for job %s: skipping %s (%s)", job_id, key, exc)
            return None
        for index, member, job in matching(members, job_id):
            length = int(client.llen(key))
            return Location(state, key, member, job, from_head=start + index < length / 2, pool_id=pool_id)
        if len(members) < CHUNK:
            return None
        start += len(members)


def _in_sorted_set(client: RedisClient, key: str, job_id: str, state: str) -> Location | None:
    """ZSCAN returns every member present for the whole scan, even while the requeuer takes due ones."""
    cursor = 0
    while True:
        try:
            cursor, page = cast(tuple[int, list[tuple[bytes, float]]], client.zscan(key, cursor, count=CHUNK))
        except redis.ResponseError as exc:
            logger.warning("looking for job %s: skipping %s (%s)", job_id, key, exc)
            return None
        members = [member for member, _ in page]
        for index, member, job in matching(members, job_id):
            return Location(state, key, member, job, score=page[index][1])
        if cursor == 0:
            return None


def _scheduled(client: RedisClient, keys: Keys, job_id: str) -> Location | None:
    return _in_sorted_set(client, keys.scheduled, job_id, "scheduled")


def _retry(client: RedisClient, keys: Keys, job_id: str) -> Location | None:
    return _in_sorted_set(client, keys.retry, job_id, "retry")


def _dead(client: RedisClient, keys: Keys, job_id: str) -> Location | None:
    return _in_sorted_set(client, keys.dead, job_id, "dead")


def _queued(client: RedisClient, keys: Keys, job_id: str) -> Location | None:
    for name in sorted(reply_text(name) for name in client.smembers(keys.known_jobs)):
        found = find_in_queue(client, keys, name, job_id)
        if found is not None:
            return found
    return None


def _running(client: RedisClient, keys: Keys, job_id: str) -> Location | None:
    """The in-progress lists of every registered pool (a dead one not yet reaped included: its jobs come back
    through the reaper, and a cancel request waits for them)."""
    for pool_id, job_names in pool_job_names(client, keys).items():
        for name in job_names:
            found = _in_list(client, keys.in_progress(name, pool_id), job_id, "running", pool_id)
            if found is not None:
                return found
    return None


def pool_job_names(client: RedisClient, keys: Keys) -> dict[str, list[str]]:
    """Every registered pool's id → the job names it fetches, from its heartbeat hash."""
    pool_ids = sorted(reply_text(pool_id) for pool_id in client.smembers(keys.worker_pools))
    pipe = client.pipeline(transaction=False)
    for pool_id in pool_ids:
        pipe.hget(keys.worker_pool(pool_id), "job_names")
    names = pipe.execute()
    return {
        pool_id: [name for name in reply_text(value or b"").split(",") if name]
        for pool_id, value in zip(pool_ids, names, strict=True)
    }
