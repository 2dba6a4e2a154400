"""Job time-outs (beanstalkd's TTR): a job running past its lease is treated as lost and made available again."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import cast

from workq.clock import Clock, ClockLike, as_clock
from workq.complaints import Complaints
from workq.connection import RedisClient, reply_text
from workq.keys import Keys
from workq.registration import Registration
from workq.scripts import Scripts

logger = logging.getLogger("workq")

BATCH = 100
RUN_TOKEN = re.compile(rb"[0-9a-f]{16}")
"""What fetch names a run with (see Worker._fetch)."""


class LeaseKeeper:
    """Puts back on their queue the jobs whose lease expired, for every job name of this pool with a `timeout`.

    The handler that outran its lease may still finish: its ack then finds the job gone and changes nothing, but the
    job may run twice — time-outs trade exactly-once for never-stuck (at-least-once).
    """

    def __init__(
        self,
        client: RedisClient,
        keys: Keys,
        scripts: Scripts,
        registrations: Sequence[Registration],
        clock: ClockLike = None,
    ) -> None:
        self._client = client
        self._keys = keys
        self._scripts = scripts
        self._registrations = [registration for registration in registrations if registration.options.timeout]
        self._clock: Clock = as_clock(clock)
        self._complaints = Complaints()

    def expire_due(self) -> int:
        return sum(self._expire(registration) for registration in self._registrations)

    def _expire(self, registration: Registration) -> int:
        now = self._clock.server_now(self._client)
        members = cast(
            list[bytes], self._client.zrangebyscore(registration.leases_key, "-inf", now, start=0, num=BATCH)
        )
        keys = [registration.leases_key, registration.queue_key, registration.lock_key, registration.lock_info_key]
        args: list[bytes | str | float] = [self._clock.script_now()]
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
            args.extend((member, payload, pool_id))
        if len(keys) == 4:
            return 0
        moved, broken = self._scripts.expire_leases(keys=keys, args=args)
        if broken:
            self._complaints.wrong_type(reply_text(broken), "jobs that outran their time-out stay in progress")
        moved = int(moved)
        if moved:
            logger.warning(
                "%d %s job(s) ran past their %s s timeout: made available again",
                moved,
                registration.name,
                registration.options.timeout,
            )
        return moved


def _holder_and_payload(member: bytes) -> tuple[bytes, bytes]:
    """A lease member is `<pool id>:<run token>:<job bytes>`; one written before run tokens (`<pool id>:<job
    bytes>`, left by an older workq) is still understood, so an upgrade strands no job."""
    pool_id, _, rest = member.partition(b":")
    token, _, payload = rest.partition(b":")
    if RUN_TOKEN.fullmatch(token):
        return pool_id, payload
    return pool_id, rest
