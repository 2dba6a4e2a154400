"""Job control: cancelling a job by id wherever it is, deleting one queued job, purging a queue.

A waiting job (queued, scheduled, retry, dead) is removed by its exact bytes in one script, which fails harmlessly
when the job moved meanwhile (fetched, requeued): it is then looked for again. A running job cannot be removed; its
pool is asked to interrupt it (a `cancel:<id>` request it polls, plus a message on the cancel channel), and files it
dead, "cancelled". A pending job's unique lock (queued or scheduled) is released as `delete_scheduled_job` does."""

from __future__ import annotations

import json
import logging
import secrets
from typing import cast

from workq import unique
from workq.connection import RedisClient
from workq.errors import JobNotFound, NotDeleted, WorkqError
from workq.job import Job
from workq.job_lookup import CHUNK, Location, decode_member, find_in_queue, find_job
from workq.job_status import REMOVED_FIELD, read_result
from workq.keys import Keys
from workq.scripts import Arg, Scripts

logger = logging.getLogger("workq")

CANCELLED_KEPT = 86_400
"""Seconds the "cancelled" record of a job removed by `cancel` is kept (for `job_status` and `wait_result`)."""
CANCEL_REQUEST_KEPT = 86_400
"""Seconds a cancel request for a running job waits to be seen: a job whose pool died is cancelled as it runs again."""
PURGE_HOLD = 3_600
"""Seconds the jobs a purge took live at most if the purging client dies before it UNLINKs them."""
MOVE_ATTEMPTS = 5
PENDING_STATES = ("queued", "scheduled")
"""States in which a unique job still holds its lock (a run releases it as it starts)."""


def cancel(client: RedisClient, scripts: Scripts, keys: Keys, job_id: str, now: int) -> str:
    """Cancel `job_id`; returns the state it was found in. See `Client.cancel`."""
    if not isinstance(job_id, str) or not job_id:
        raise ValueError(f"job_id must be a non-empty string, got {job_id!r}")
    record = read_result(client, keys, job_id)
    if record is not None and record.final:  # no need to look through the queues
        status = record.status
        raise JobNotFound(f"job {job_id} ({status.job_name}) is already {status.state}: nothing left to cancel")
    for _ in range(MOVE_ATTEMPTS):
        found = find_job(client, keys, job_id)
        if found is None:
            break
        if found.state == "running":
            request: list[Arg] = [found.member, CANCEL_REQUEST_KEPT, keys.cancel_channel, job_id]
            if scripts.cancel_running(keys=[found.key, keys.cancel_request(job_id)], args=request):
                logger.info("cancel of job %s %s requested from pool %s", found.job.name, job_id, found.pool_id)
                return "running"
            continue
        if _remove(client, scripts, keys, found, _tombstone(found, now)):
            logger.info("cancelled job %s %s (was %s)", found.job.name, job_id, found.state)
            return found.state
    else:
        raise WorkqError(f"job {job_id} moved {MOVE_ATTEMPTS} times while being cancelled; try again")
    record = read_result(client, keys, job_id)  # written meanwhile, perhaps
    if record is not None:
        status = record.status
        raise JobNotFound(f"job {job_id} ({status.job_name}) is already {status.state}: nothing left to cancel")
    raise JobNotFound(f"no job {job_id} is queued, scheduled, retrying, running or dead in {keys.namespace!r}")


def delete_queued_job(client: RedisClient, scripts: Scripts, keys: Keys, job_name: str, job_id: str) -> None:
    """Remove job `job_id` from the queue of `job_name`; `NotDeleted` if it is not (or no longer) there."""
    for _ in range(MOVE_ATTEMPTS):
        found = find_in_queue(client, keys, job_name, job_id)
        if found is None:
            raise NotDeleted(f"no job {job_id} is queued for {job_name}")
        if _remove(client, scripts, keys, found, ""):
            return
    raise NotDeleted(f"job {job_id} of {job_name} moved {MOVE_ATTEMPTS} times while being deleted; try again")


def purge(client: RedisClient, scripts: Scripts, keys: Keys, job_name: str) -> int:
    """Remove every job queued for `job_name` at this moment; returns how many. The queue is renamed away in one
    O(1) call (later enqueues start a new queue), the unique locks of the jobs taken are released page by page,
    and the jobs are freed with UNLINK, in Redis's background thread. Running jobs are not touched."""
    holding = keys.purged(job_name, secrets.token_hex(8))
    count = int(scripts.purge_queue(keys=[keys.queue(job_name), holding], args=[PURGE_HOLD]))
    if count:
        start = 0
        while members := cast(list[bytes], client.lrange(holding, start, start + CHUNK - 1)):
            if b'"unique":true' in b"\x00".join(members):
                _release_locks(client, scripts, keys, [job for job in map(decode_member, members) if job.unique])
            start += len(members)
        client.unlink(holding)
    logger.info("purged %d queued %s job(s)", count, job_name)
    return count


def _remove(client: RedisClient, scripts: Scripts, keys: Keys, found: Location, tombstone: str) -> bool:
    """Take a waiting job out by its exact bytes (recording `tombstone` when given); False if it moved."""
    direction: int | str = "" if found.state != "queued" else (1 if found.from_head else -1)
    args = [found.member, direction, tombstone, CANCELLED_KEPT]
    if not scripts.remove_job(keys=[found.key, keys.result(found.job.id)], args=args):
        return False
    if found.job.unique and found.state in PENDING_STATES:
        unique.claim(client, scripts, keys, found.job)
    return True


def _tombstone(found: Location, now: int) -> str:
    """The result record of a job cancelled while waiting, as `job_status` and `wait_result` read it."""
    return json.dumps(
        {
            "state": "cancelled",
            "job_name": found.job.name,
            "result": None,
            "fails": found.job.fails,
            "last_err": f"cancelled while {found.state}",
            "updated_at": now,
            REMOVED_FIELD: True,
        }
    )


def _release_locks(client: RedisClient, scripts: Scripts, keys: Keys, jobs: list[Job]) -> None:
    """Release the locks the purged unique `jobs` still own, in two round trips for the page; a lock that
    changed between them (a by-key enqueue replacing its args) is claimed again the careful way."""
    locked = [(job, lock_key) for job in jobs if (lock_key := unique.lock_key_of(job, keys)) is not None]
    pipe = client.pipeline(transaction=False)
    for _, lock_key in locked:
        pipe.get(lock_key)
    values = pipe.execute(raise_on_error=False)
    owned = [
        (job, lock_key, value)
        for (job, lock_key), value in zip(locked, values, strict=True)
        if isinstance(value, bytes) and unique.owns(job, lock_key, value, keys)
    ]
    if not owned:
        return
    client.script_load(scripts.release_lock.source)
    pipe = client.pipeline(transaction=False)
    for _, lock_key, value in owned:
        pipe.execute_command("EVALSHA", scripts.release_lock.sha, 1, lock_key, value)
    for (job, _, _), released in zip(owned, pipe.execute(raise_on_error=False), strict=True):
        if released != 1:
            unique.claim(client, scripts, keys, job)
