"""A thread subscribed to one pub/sub channel of the pool: the wake-up and cancel listeners share it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from redis.client import PubSub

from workq.complaints import Complaints
from workq.connection import RedisClient, is_redis_fault, reply_text

logger = logging.getLogger("workq")

RECONNECT_WAIT = 1.0


class ChannelListener:
    """Relays each message on `channel` to `on_message` (its text). On a dropped connection it logs once, retries
    every second and calls `on_resubscribed` once subscribed again (messages sent meanwhile were lost). `tick`, if
    given, is called as the subscription starts and then every `tick_interval` seconds."""

    def __init__(
        self,
        client: RedisClient,
        channel: str,
        name: str,
        on_message: Callable[[str], None],
        *,
        on_resubscribed: Callable[[], None] | None = None,
        tick: Callable[[], object] | None = None,
        tick_interval: float = 1.0,
    ) -> None:
        self._client = client
        self._channel = channel
        self._name = name
        self._on_message = on_message
        self._on_resubscribed = on_resubscribed
        self._tick = tick
        self._tick_interval = tick_interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._complaints = Complaints()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, name=f"workq-{self._name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening; a message on the channel ends the listener's wait at once (else within a second)."""
        self._stopping.set()
        try:
            self._client.publish(self._channel, "")
        except Exception as exc:  # the listener then notices within a second; a stop must never fail
            logger.debug("%s: could not publish its stop (%s)", self._name, exc)
        if self._thread is not None:
            self._thread.join()

    def _listen(self) -> None:
        failing = False
        while not self._stopping.is_set():
            pubsub: PubSub | None = None
            try:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(self._channel)
                if failing:
                    logger.info("%s: subscribed again", self._name)
                    failing = False
                    if self._on_resubscribed is not None:
                        self._on_resubscribed()
                self._relay(pubsub)
            except Exception as exc:  # the listener outlives any failure
                if not is_redis_fault(exc):  # e.g. NOPERM: an ACL without this channel; said once a minute
                    self._complaints.report(
                        self._name,
                        "%s: %s on %s (%s); retrying. An ACL user needs the channel: &%s",
                        self._name,
                        type(exc).__name__,
                        self._channel,
                        exc,
                        self._channel,
                    )
                elif not failing:
                    logger.warning("%s: Redis unavailable (%s); retrying", self._name, exc)
                    failing = True
                self._stopping.wait(RECONNECT_WAIT)
            finally:
                if pubsub is not None:
                    pubsub.close()

    def _relay(self, pubsub: PubSub) -> None:
        next_tick = time.monotonic()
        while not self._stopping.is_set():
            wait = 1.0
            if self._tick is not None:
                if time.monotonic() >= next_tick:
                    self._tick()
                    next_tick = time.monotonic() + self._tick_interval
                wait = max(0.0, min(wait, next_tick - time.monotonic()))
            message = pubsub.get_message(timeout=wait)
            if message is not None:
                self._on_message(reply_text(message.get("data") or b""))
