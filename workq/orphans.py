"""Jobs in this pool's own in-progress lists that none of its workers holds, handed back to their queues.

A fetch whose reply is lost to a dropped connection has moved its job into the pool's in-progress list, but no
worker ever learns of it; the pool is alive, so the reaper leaves it alone. The sweeper finds such jobs by
comparing each list with what the workers hold. A job seen orphaned on two passes in a row (a fetch reply still
on its way is not) goes back to the front of its queue, and the lease its lost fetch took (for a job with a
time-out) goes with it: left behind, it would expire later and take the job from whichever run holds it then.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import cast

from workq.connection import RedisClient
from workq.keys import Keys
from workq.registration import Registration
from workq.run import Ack, AckCall
from workq.scripts import Scripts
from workq.timeouts import RUN_TOKEN

logger = logging.getLogger("workq")


class OrphanSweeper:
    def __init__(
        self,
        client: RedisClient,
        keys: Keys,
        scripts: Scripts,
        *,
        pool_id: str,
        registrations: Sequence[Registration],
        held: Callable[[], Counter[bytes]],
        held_leases: Callable[[], set[bytes]],
        clock: Callable[[], float],
    ) -> None:
        self._client = client
        self._keys = keys
        self._scripts = scripts
        self._pool_id = pool_id
        self._registrations = list(registrations)
        self._held = held
        self._held_leases = held_leases
        self._clock = clock
        self._suspects: dict[str, Counter[bytes]] = {}

    def sweep(self) -> int:
        """One pass; returns how many jobs went back to their queues."""
        pipe = self._client.pipeline(transaction=False)
        for registration in self._registrations:
            pipe.lrange(registration.in_progress_key, 0, -1)
        listed = cast(list[list[bytes]], pipe.execute())
        held = self._held()  # read after the lists: a job fetched in between is held, not orphaned
        returned = 0
        for registration, payloads in zip(self._registrations, listed, strict=True):
            orphans = Counter(payloads) - held
            confirmed = orphans & self._suspects.get(registration.name, Counter())
            self._suspects[registration.name] = orphans - confirmed
            for payload, copies in confirmed.items():
                for _ in range(copies):
                    returned += self._hand_back(registration, payload)
        return returned

    def _hand_back(self, registration: Registration, payload: bytes) -> int:
        call = AckCall(self._pool_id, "")
        lease = self._lost_lease(registration, payload)
        call.add(
            registration.ack_keys(self._keys, self._clock()), payload, Ack(registration.queue_key, None, payload), lease
        )
        [done] = self._scripts.ack(keys=call.keys, args=call.args)
        if not isinstance(done, int):
            logger.error(
                "a %s job in progress with no worker could not go back to its queue: %r", registration.name, done
            )
            return 0
        if done:
            logger.warning(
                "a %s job was in progress with no worker (a lost fetch reply): back on its queue", registration.name
            )
        return done

    def _lost_lease(self, registration: Registration, payload: bytes) -> bytes:
        """The lease the lost fetch of `payload` took: one of this pool's, for these bytes, that no worker holds.
        Leases are only as many as running jobs with a time-out, and orphans are rare: a scan is cheap."""
        if not registration.options.timeout:
            return b""
        held = self._held_leases()
        prefix = f"{self._pool_id}:".encode()
        for member, _ in self._client.zscan_iter(registration.leases_key, match=prefix + b"*"):
            token, _, rest = member[len(prefix) :].partition(b":")
            if rest == payload and RUN_TOKEN.fullmatch(token) and member not in held:
                return cast(bytes, member)
        return b""
