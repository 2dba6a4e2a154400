"""The queues table the CLI (`workq queues`) and the dashboard both show: each known queue with its pause state,
today's outcomes and how many live pools serve it, read the same way for both so they never disagree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from workq.client import Client
from workq.queue_views import JobStats


@dataclass(frozen=True)
class QueueRow:
    """A queue with its pause state and today's outcomes."""

    job_name: str
    count: int
    latency: int
    paused: bool
    processed: int
    failed: int
    problem: str = ""
    """What is wrong with this queue's entries in Redis (its next job, today's counters), or "" when nothing."""
    pools: int = 0
    """How many live pools serve this name; 0: its jobs wait until one does (or the name is a typo)."""

    @property
    def error_rate(self) -> float | None:
        """Failed runs over all finished runs today; None when nothing ran."""
        return failure_rate(self.failed, self.processed)


def queue_rows(client: Client, stats: Sequence[JobStats] | None = None) -> list[QueueRow]:
    """Every known queue with today's outcomes (`stats`, when the caller read them already)."""
    today = {entry.job_name: entry for entry in (client.job_stats() if stats is None else stats)}
    serving = client.serving_pools()
    rows = []
    for queue in client.queues():
        entry = today.get(queue.job_name)
        rows.append(
            QueueRow(
                job_name=queue.job_name,
                count=queue.count,
                latency=queue.latency,
                paused=queue.paused,
                processed=entry.processed if entry else 0,
                failed=entry.failed if entry else 0,
                problem="; ".join(problem for problem in (queue.problem, entry.problem if entry else "") if problem),
                pools=serving.get(queue.job_name, 0),
            )
        )
    return rows


def failure_rate(failed: int, processed: int) -> float | None:
    """Failed runs over all finished runs; None when nothing finished."""
    finished = failed + processed
    return failed / finished if finished else None
