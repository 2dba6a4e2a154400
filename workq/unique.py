"""Unique locks: what a lock holds, whose it is, and releasing it only for its owner.

A unique job's lock (`<ns>:unique:<name>:<key as Go's JSON>`) belongs to the *pending* job that took it. It is
released when that job's run starts (or when that job is deleted), and by nothing else: a retried or rescheduled
copy of a job whose lock was released already is filed without `unique`, and a job that finds a lock that is
not its own leaves it alone. What a lock holds, all of it readable by gocraft/work workers:

- `1` — written by gocraft/work's `EnqueueUnique` (and by workq before owner tokens): anyone's who finds it.
- a job's exact JSON — written by `enqueue_unique` and by the first `enqueue_unique_by_key` (and by gocraft/work's
  `EnqueueUniqueByKey`): owned by the job with that `id`. gocraft/work's worker runs the lock's JSON, which is
  then byte-for-byte the queued job, so its own bookkeeping stays right.
- job JSON with a `unique_owner` field — a later `enqueue_unique_by_key` of the same key: the newest args to run,
  owned by the pending job that `unique_owner` names.

One case cannot be told apart: gocraft/work's `EnqueueUniqueByKey` replaces a pending job's lock with JSON naming
its own new id and no owner. So JSON of another id is taken for such a replacement (anyone's who finds it) unless
it is another job's lock by args (its key is derived from its own args). The limit this leaves: a run recovered
after a crash or a time-out may release a by-key lock that a newer job took meanwhile.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

from workq import gojson
from workq.connection import RedisClient, reply_text
from workq.errors import MalformedJob
from workq.job import Job
from workq.keys import Keys
from workq.scripts import Scripts

logger = logging.getLogger("workq")

OWNER_FIELD = "unique_owner"
CLAIM_ATTEMPTS = 3
"""A lock that changes between our read and our compare-and-delete (a by-key enqueue replacing its args) is read
again; a lock that keeps changing is left alone and the queued job runs as it is."""


def lock_value(job: Job) -> str:
    """What `enqueue_unique` stores in the lock of `job`: the job's own JSON, which is also what gocraft/work's
    worker runs (a later by-key enqueue replaces it with newer args plus the pending job's `unique_owner`)."""
    return job.to_json()


def by_key_value_body(job_json: str) -> str:
    """A by-key lock value without its closing brace: enqueue_unique.lua appends the pending job's owner."""
    return job_json[:-1]


def lock_key_of(job: Job, keys: Keys) -> str | None:
    """The lock a unique job took, or None when it names a key outside this namespace's unique locks.

    gocraft/work v0.5.1 wrote no `unique_key`; its lock is derived from name and args, as v0.5.1 derives it."""
    if not job.unique_key:
        return keys.unique_for(job.name, job.args)
    if job.unique_key.startswith(keys.unique(job.name, "")):
        return job.unique_key
    logger.warning(
        "job %s %s: ignoring unique_key %r outside %r", job.name, job.id, job.unique_key, keys.unique("", "")
    )
    return None


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a lock as a job's run starts."""

    released: bool
    job: Job
    """The job to run: the queued one, or, for a by-key lock, the queued job with the newest args stored there."""
    by_key: bool


def owns(job: Job, lock_key: str, value: bytes | str, keys: Keys) -> bool:
    """Whether the lock holding `value` is `job`'s to release."""
    text = reply_text(value)
    if text == "1":
        return True
    try:
        stored = Job.from_json(text)
    except MalformedJob:
        logger.warning("unique lock %s holds no job (%r); releasing it", lock_key, text[:200])
        return True
    owner = stored.extra.get(OWNER_FIELD)
    if isinstance(owner, str):
        return owner == job.id
    if stored.id == job.id:
        return True
    # Another job's exact JSON (workq's enqueue_unique) is keyed by its own args; gocraft/work's by-key JSON is not.
    return keys.unique_for(stored.name, stored.args) != lock_key


def _lock_keys_to_try(job: Job, keys: Keys) -> list[str]:
    """The lock `job` took; for a v0.5.1 job whose args hold U+0008 or U+000C also the key as Go before 1.22
    wrote it (`\\u0008`, not `\\b`), the one a gocraft/work service built with an older Go took."""
    lock_key = lock_key_of(job, keys)
    if lock_key is None:
        return []
    if job.unique_key:
        return [lock_key]
    return list(dict.fromkeys([lock_key, gojson.as_before_go_1_22(lock_key)]))


def claim(client: RedisClient, scripts: Scripts, keys: Keys, job: Job) -> Claim:
    """Release `job`'s lock if it is still its own (compare-and-delete); return what to run."""
    lock_key = ""
    try:
        for lock_key in _lock_keys_to_try(job, keys):
            for _ in range(CLAIM_ATTEMPTS):
                value = client.get(lock_key)
                if value is None:
                    break  # not this key: try the next form
                if not owns(job, lock_key, value, keys):
                    return Claim(False, job, False)
                if scripts.release_lock(keys=[lock_key], args=[value]):
                    return Claim(True, *_to_run(job, value))
    except redis.ResponseError as exc:  # a lock key of the wrong type: not a lock anyone can hold
        logger.error(
            "job %s %s: unique lock %s is unreadable (%s); running the queued job", job.name, job.id, lock_key, exc
        )
    return Claim(False, job, False)


def _to_run(job: Job, value: bytes | str) -> tuple[Job, bool]:
    """The queued job, with the args of a by-key lock's newest JSON (keeping the queued job's id)."""
    text = reply_text(value)
    if text == "1":
        return job, False
    try:
        stored = Job.from_json(text)
    except MalformedJob:
        return job, False
    if stored.extra.pop(OWNER_FIELD, None) is None and stored.id == job.id:
        return job, False  # the queued job's own JSON: nothing newer to run
    stored.id = job.id
    return stored, True
