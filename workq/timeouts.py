"""Leases (beanstalkd's TTR) as crash recovery for jobs with a `timeout`: a run whose lease expired — its pool died
or stalled past the time limit and its margins (see `workq.time_limits.lease_seconds`) — counts as a failure."""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Sequence
from typing import cast

from workq.clock import Clock, ClockLike, as_clock
from workq.complaints import Complaints
from workq.connection import RedisClient, reply_text
from workq.errors import MalformedJob
from workq.failures import refile_failed
from workq.job import Job, malformed_job_record
from workq.keys import STATS_LIFETIME, Keys
from workq.registration import Registration
from workq.scripts import Scripts

logger = logging.getLogger("workq")

BATCH = 100
RUN_TOKEN = re.compile(rb"[0-9a-f]{16}")
"""What fetch names a run with (see Worker._fetch)."""
LEASE_EXPIRED = "timed out: its lease expired (the pool running it died or stalled)"


class LeaseKeeper:
    """Recovers, for every job name of this pool with a `timeout`, the jobs whose lease expired: each such run is
    counted as failed (`err` says "timed out"), then retried after its backoff or filed dead, as a failed run.

    The run may still be going on in a stalled pool: if it finishes after all, its ack finds the job gone and
    changes nothing.
    """

    def __init__(
        self,
        client: RedisClient,
        keys: Keys,
        scripts: Scripts,
        registrations: Sequence[Registration],
        clock: ClockLike = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._keys = keys
        self._scripts = scripts
        self._registrations = [registration for registration in registrations if registration.options.timeout]
        self._clock: Clock = as_clock(clock)
        self._rng = rng if rng is not None else random.Random()
        self._complaints = Complaints()

    def expire_due(self) -> int:
        return sum(self._expire(registration) for registration in self._registrations)

    def _expire(self, registration: Registration) -> int:
        now = self._clock.server_now(self._client)
        members = cast(
            list[bytes], self._client.zrangebyscore(registration.leases_key, "-inf", now, start=0, num=BATCH)
        )
        keys = [
            registration.leases_key,
            registration.lock_key,
            registration.lock_info_key,
            self._keys.retry,
            self._keys.dead,
            self._keys.stats(registration.name, self._clock.wall()),
        ]
        fixed = len(keys)
        args: list[bytes | str | float] = [self._clock.script_now(), STATS_LIFETIME]
        for member in members:
            pool_id, payload = _holder_and_payload(member)
            try:
                keys.append(self._keys.in_progress(registration.name, pool_id.decode()))
            except UnicodeDecodeError:
                self._complaints.report(
                    registration.leases_key,
                    "%s: a lease names no valid pool (%r)",
                    registration.leases_key,
                    member[:80],
                )
                continue
            args.extend((member, payload, pool_id, *self._failed(registration, payload)))
        if len(keys) == fixed:
            return 0
        moved, broken = self._scripts.expire_leases(keys=keys, args=args)
        if broken:
            self._complaints.wrong_type(reply_text(broken), "jobs whose lease expired stay in progress")
        moved = int(moved)
        if moved:
            logger.warning(
                "%d %s job(s) whose lease expired (their pool died or stalled): counted as failed runs",
                moved,
                registration.name,
            )
        return moved

    def _failed(self, registration: Registration, payload: bytes) -> tuple[str, float, str]:
        """Where the job of an expired lease goes (`retry`, `dead` or '' dropped), its delay and its JSON."""
        now = self._clock.wall()
        try:
            job = Job.from_json(payload)
        except MalformedJob as exc:
            reason = f"malformed job payload in queue {registration.name}: {exc}"
            return "dead", 0, malformed_job_record(registration.name, payload, reason, int(now)).to_json()
        refiling = refile_failed(job, registration.options, self._keys, self._rng, err=LEASE_EXPIRED, now=now)
        where = {self._keys.retry: "retry", self._keys.dead: "dead"}.get(refiling.destination or "", "")
        return where, refiling.delay, refiling.filed


def _holder_and_payload(member: bytes) -> tuple[bytes, bytes]:
    """A lease member is `<pool id>:<run token>:<job bytes>`; one written before run tokens (`<pool id>:<job
    bytes>`, left by an older workq) is still understood, so an upgrade strands no job."""
    pool_id, _, rest = member.partition(b":")
    token, _, payload = rest.partition(b":")
    if RUN_TOKEN.fullmatch(token):
        return pool_id, payload
    return pool_id, rest
