"""A FastAPI-style app that enqueues with `AsyncEnqueuer` (no web framework needed to run it: run.py calls the
handlers as the framework would). With FastAPI it reads:

    app = FastAPI(lifespan=lifespan)

    @app.post("/signup")
    async def signup(body: Signup) -> dict[str, str]: ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from examples.async_app.tasks import make_thumbnail, send_welcome
from workq.aio import AsyncEnqueuer

enqueuer: AsyncEnqueuer | None = None


@asynccontextmanager
async def lifespan(namespace: str, redis: Any) -> AsyncIterator[None]:
    """One AsyncEnqueuer per event loop: made at start-up (not import time), closed at shutdown."""
    global enqueuer
    enqueuer = AsyncEnqueuer(namespace, redis)
    try:
        yield
    finally:
        await enqueuer.aclose()
        enqueuer = None


async def signup(body: dict[str, Any]) -> dict[str, str]:
    """POST /signup: answer at once, send the mail in the background. The typed task checks the arguments
    (mypy at the call site, TypeError at run time) before Redis is touched."""
    assert enqueuer is not None, "the app has started"
    job = await send_welcome.using(enqueuer).enqueue(body["email"], name=body.get("name", "there"))
    return {"status": "queued", "job_id": job.id}


async def upload(body: dict[str, Any]) -> dict[str, str]:
    """POST /upload: a plain enqueue by name works too (unique: the same thumbnail is not queued twice)."""
    assert enqueuer is not None, "the app has started"
    job = await enqueuer.enqueue_unique(make_thumbnail.name, {"path": body["path"]})
    return {"status": "queued" if job is not None else "already queued"}
