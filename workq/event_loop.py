"""The pool process's one event loop, on a thread of its own, and the bridges between it and threads.

Async handlers and async middleware all run on this loop (so they may share loop-bound clients and sessions). Sync
layers of a mixed chain run in its helper threads; see `workq.middleware` for how a chain crosses over.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from workq.job import Job

logger = logging.getLogger("workq")
_T = TypeVar("_T")

RESULT_POLL = 0.1
"""How often a thread waiting for the loop wakes: an exception raised into it (a time-out) lands within this."""


class _Crossing:
    """One sync stretch of a chain run in a helper thread: the loop futures it started, so that cancelling the
    task that awaits it (time-out, cancel, stop) cancels what runs on the loop under it too."""

    def __init__(self) -> None:
        self.cancelled = False
        self.inner: list[concurrent.futures.Future[Any]] = []
        self.lock = threading.Lock()

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            for future in self.inner:
                future.cancel()


_CROSSING: contextvars.ContextVar[_Crossing | None] = contextvars.ContextVar("workq_crossing", default=None)


class EventLoopThread:
    """Runs `loop` on the thread `workq-event-loop` from `start()` to `stop()`; `helper_threads` bounds how many
    sync layers of mixed chains run at once."""

    def __init__(self, helper_threads: int) -> None:
        self.loop = asyncio.new_event_loop()
        self._helpers = ThreadPoolExecutor(max_workers=helper_threads, thread_name_prefix="workq-loop-helper")
        self._thread = threading.Thread(target=self._run, name="workq-event-loop", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def ensure_started(self) -> None:
        """Start the loop unless it runs (a pool driven step by step starts it on first use)."""
        if not self._thread.is_alive() and not self.loop.is_closed():
            self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def stop(self, timeout: float | None = None) -> None:
        """Cancel what still runs on the loop, then stop and close it, and end the helper threads (the caller has
        finished or handed back every job by now). Waits about `timeout` seconds at most for each step."""
        if self._thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self._cancel_all(), self.loop)
            try:
                future.result(timeout)
            except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                logger.warning("event loop: tasks did not end when cancelled; stopping the loop anyway")
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()
        self._helpers.shutdown(wait=False, cancel_futures=True)
        for helper in list(self._helpers._threads):
            helper.join(timeout)

    async def _cancel_all(self) -> None:
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def submit(self, coroutine: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        """Schedule `coroutine` on the loop from any thread."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def call_on_loop(self, chain: Callable[[Job], Coroutine[Any, Any, None]], job: Job) -> None:
        """From a thread: run the async rest of a chain on the loop and wait for it; its exception is raised
        here. An exception raised into this thread meanwhile (a time-out) cancels it."""
        crossing = _CROSSING.get()
        if crossing is not None and crossing.cancelled:
            raise asyncio.CancelledError()
        future = self.submit(chain(job))
        if crossing is not None:
            with crossing.lock:
                crossing.inner.append(future)
                if crossing.cancelled:
                    future.cancel()
        try:
            while True:
                try:
                    future.result(RESULT_POLL)
                    return
                except concurrent.futures.TimeoutError:
                    continue
        except concurrent.futures.CancelledError:
            raise asyncio.CancelledError() from None
        except BaseException:
            future.cancel()
            raise

    async def call_in_thread(self, chain: Callable[[Job], None], job: Job) -> None:
        """On the loop: run the sync rest of a chain in a helper thread and await it. Cancelling the awaiting task
        cancels the async layers that sync rest started on the loop (its `next()` then raises CancelledError)."""
        crossing = _Crossing()
        context = contextvars.copy_context()
        context.run(_CROSSING.set, crossing)
        try:
            await self.loop.run_in_executor(self._helpers, context.run, chain, job)
        except asyncio.CancelledError:
            crossing.cancel()
            raise
