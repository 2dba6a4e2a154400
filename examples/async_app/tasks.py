"""The jobs of the async example: typed tasks, one `async def` (I/O-bound) and one plain `def` (CPU-bound)."""

from __future__ import annotations

import asyncio

from workq import WorkerPool

pool = WorkerPool("async-app", concurrency=2, async_concurrency=100)
sent: list[str] = []
"""What the tasks did, for run.py to print (a real app would send mail, write files...)."""


@pool.task(max_fails=3)
async def send_welcome(email: str, name: str = "there") -> None:
    await asyncio.sleep(0.05)  # the mail API call: the event loop runs other jobs meanwhile
    sent.append(f"welcome mail to {name} <{email}>")


@pool.task
def make_thumbnail(path: str, width: int = 128) -> None:
    sent.append(f"thumbnail of {path} at {width} px")
