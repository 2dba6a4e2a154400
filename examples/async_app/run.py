"""workq's asyncio example: a FastAPI-style app enqueues with AsyncEnqueuer while serving requests; a worker pool
runs the typed tasks, the `async def` one on its event loop.

    python examples/async_app/run.py

Uses the Redis at $WORKQ_REDIS_URL (default redis://localhost:6379/0) in a namespace of its own, deleted at the
end; with no Redis answering it runs on an in-process fakeredis instead.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from examples.async_app import web
from examples.async_app.tasks import pool, sent
from examples.redis_or_fakeredis import connect


async def serve(namespace: str, redis_for_app: Any) -> None:
    """What the web framework does: start the app, handle a burst of requests at once, shut down."""
    async with web.lifespan(namespace, redis_for_app):
        requests = [web.signup({"email": f"user{n}@example.com", "name": f"User {n}"}) for n in range(5)]
        requests += [web.upload({"path": "cat.png"}), web.upload({"path": "cat.png"})]
        for response in await asyncio.gather(*requests):
            print(f"  response {response}")


def main() -> None:
    client, redis_for_app = connect()
    namespace = f"async-app-{secrets.token_hex(3)}"
    pool.configure(namespace=namespace, redis=client)

    print("\nThe app answers 7 requests (5 sign-ups, the same upload twice):")
    asyncio.run(serve(namespace, redis_for_app))

    print("\nThe pool runs the jobs:")
    with pool:
        pool.drain(timeout=30)
    for line in sorted(sent):
        print(f"  {line}")
    client.delete(*client.keys(f"{namespace}:*"))
    print(f"\nDone. Namespace {namespace} removed.")


if __name__ == "__main__":
    main()
