"""workq quickstart: enqueue a few jobs, run them in a worker pool, watch a retry and a dead job.

    python examples/quickstart/run.py

Uses the Redis at $WORKQ_REDIS_URL (default redis://localhost:6379/0) in a namespace of its own, deleted at the
end; with no Redis answering it runs on an in-process fakeredis instead.
"""

from __future__ import annotations

import logging
import secrets
import sys
from contextlib import suppress
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from examples.quickstart.jobs import charge_card, pool, resize_image, send_welcome
from examples.redis_or_fakeredis import connect
from workq import Client, JobFailed


class BriefFormatter(logging.Formatter):
    """Log lines without tracebacks, to keep the quickstart readable (workers log them in full)."""

    def formatException(self, ei: object) -> str:  # noqa: N802 - logging's name
        return ""


def main() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(BriefFormatter("  [log] %(message)s"))
    logging.getLogger("workq").addHandler(handler)
    logging.getLogger("workq").setLevel(logging.INFO)

    client, _ = connect()
    namespace = f"quickstart-{secrets.token_hex(3)}"
    pool.configure(namespace=namespace, redis=client)
    inspector = Client(namespace, client)  # reads the namespace: queues, sets, dead jobs

    print("\nEnqueuing 5 jobs:")
    jobs = [
        send_welcome.enqueue(address=address)
        for address in ("ada@example.com", "grace@example.com", "linus@example.com")
    ]
    jobs += [charge_card.enqueue(order=42, cents=1999), resize_image.enqueue(path="cat.heic")]
    for job in jobs:
        print(f"  {job.name:<13} id={job.id}")

    print("\nProcessing (charge_card fails once and is retried; resize_image fails twice and dies):")
    with pool:
        for job in jobs:  # each name keeps its result (keep_result), so each job can be waited for by id
            with suppress(JobFailed):  # resize_image dies: listed below
                inspector.wait_result(job.id, timeout=30)

    print("\nDead queue:")
    dead_jobs, _ = inspector.dead_jobs()
    for dead in dead_jobs:
        print(f"  {dead.name} id={dead.id} fails={dead.fails} died_at={dead.died_at} err={dead.last_err!r}")
    client.delete(*client.keys(f"{namespace}:*"))
    print(f"\nDone. Namespace {namespace} removed.")


if __name__ == "__main__":
    main()
