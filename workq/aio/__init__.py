"""asyncio: `AsyncEnqueuer`, the `Enqueuer` of redis.asyncio code (FastAPI, aiohttp, Starlette)."""

from workq.aio.enqueuer import AsyncEnqueuer

__all__ = ["AsyncEnqueuer"]
