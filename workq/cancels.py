"""How a pool learns that `Client.cancel` asked to stop a job it runs: the cancel channel (pub/sub, the message is
the job id) at once, and a poll of the cancel requests (`cancel:<id>`) of its running jobs every second, for what a
dropped subscription missed. Either way the run is interrupted (`Cancelled`) and filed dead."""

from __future__ import annotations

import logging
from collections.abc import Callable

from workq.channel_listener import Channel
from workq.connection import RedisClient
from workq.keys import Keys

logger = logging.getLogger("workq")

POLL_INTERVAL = 1.0


class CancelSignal:
    """Relays cancels of the jobs this pool runs to `cancel` (True when it runs the job): the pool's
    `ChannelListener` listens on `channel` and ticks its poll; `running_job_ids` says which cancel requests to poll
    for."""

    def __init__(
        self,
        client: RedisClient,
        keys: Keys,
        cancel: Callable[[str], bool],
        running_job_ids: Callable[[], set[str]],
        *,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self._client = client
        self._keys = keys
        self._cancel_running = cancel
        self._running_job_ids = running_job_ids
        self.channel = Channel(keys.cancel_channel, self._cancel, tick=self.poll, tick_interval=poll_interval)

    def poll(self) -> int:
        """Cancel the running jobs whose cancel request exists; returns how many were found."""
        job_ids = sorted(self._running_job_ids())
        if not job_ids:
            return 0
        pipe = self._client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.exists(self._keys.cancel_request(job_id))
        requested = [job_id for job_id, exists in zip(job_ids, pipe.execute(), strict=True) if exists]
        for job_id in requested:
            logger.info("cancel request of job %s found by the poll: cancelling it", job_id)
            self._cancel_running(job_id)
        return len(requested)

    def _cancel(self, job_id: str) -> None:
        if job_id and self._cancel_running(job_id):
            logger.info("cancel of job %s received: interrupting its run", job_id)
