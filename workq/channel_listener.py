"""One pub/sub connection per pool, on one thread, for all its channels (wake-ups and cancels), each relayed to its
own handler.

Each channel is subscribed with a SUBSCRIBE of its own and its reply awaited: an ACL that refuses one channel
(NOPERM) refuses the whole of a SUBSCRIBE naming several, and the other channels must keep working. A refused
channel is asked for again every `RETRY_REFUSED` seconds and logged once a minute, naming the channel to allow.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.client import PubSub

from workq.complaints import Complaints
from workq.connection import RedisClient, is_redis_fault, reply_text

logger = logging.getLogger("workq")

RECONNECT_WAIT = 1.0
RETRY_REFUSED = 1.0
MAX_WAIT = 1.0
"""Longest wait for a message: how late the listener may notice `stop()` when its wake-up message is refused."""
SUBSCRIBE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Channel:
    """A channel a pool listens to. `on_message` gets the text of each message; `on_resubscribed` is called once
    subscribed again after a lost connection (messages sent meanwhile were lost); `tick`, if given, as listening
    starts and then every `tick_interval` seconds, whether the channel is subscribed or not (a poll for what
    pub/sub misses)."""

    name: str
    on_message: Callable[[str], None]
    on_resubscribed: Callable[[], object] | None = None
    tick: Callable[[], object] | None = None
    tick_interval: float = 1.0


class ChannelListener:
    """Relays the messages of `channels` over one connection. On a dropped connection it logs once, retries every
    second and subscribes every channel again."""

    def __init__(self, client: RedisClient, channels: Sequence[Channel], name: str = "pubsub-listener") -> None:
        self._client = client
        self._channels = {channel.name: channel for channel in channels}
        self._name = name
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._complaints = Complaints()
        self._failing = False
        self._lost: set[str] = set()
        """Channels whose subscription a lost connection ended: `on_resubscribed` is due once subscribed again."""
        self._subscribed: set[str] = set()
        self._next_tick = {channel.name: 0.0 for channel in channels if channel.tick is not None}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, name=f"workq-{self._name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening; a message on a subscribed channel ends the listener's wait at once (else within
        `MAX_WAIT`)."""
        self._stopping.set()
        for name in list(self._subscribed)[:1]:
            try:
                self._client.publish(name, "")
            except Exception as exc:  # the listener then notices within a second; a stop must never fail
                logger.debug("%s: could not publish its stop (%s)", self._name, exc)
        if self._thread is not None:
            self._thread.join()

    def _listen(self) -> None:
        while not self._stopping.is_set():
            pubsub: PubSub | None = None
            try:
                pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]
                self._relay(pubsub)
            except Exception as exc:  # the listener outlives any failure
                if not is_redis_fault(exc):
                    self._complaints.report(
                        self._name, "%s: %s (%s); listening again every second", self._name, type(exc).__name__, exc
                    )
                elif not self._failing:
                    logger.warning("%s: Redis unavailable (%s); retrying", self._name, exc)
                    self._failing = True
                    self._lost.update(self._channels)
                self._subscribed.clear()
                self._stopping.wait(RECONNECT_WAIT)
            finally:
                if pubsub is not None:
                    pubsub.close()

    def _relay(self, pubsub: PubSub) -> None:
        pending = list(self._channels.values())
        retry_at = 0.0
        while not self._stopping.is_set():
            now = time.monotonic()
            if pending and now >= retry_at:
                pending = [channel for channel in pending if not self._subscribe(pubsub, channel)]
                retry_at = now + RETRY_REFUSED
            wait = self._tick_due()
            if pending:
                wait = min(wait, retry_at - time.monotonic())
            message = pubsub.get_message(timeout=max(0.0, wait))
            if message is not None:
                self._dispatch(message)

    def _subscribe(self, pubsub: PubSub, channel: Channel) -> bool:
        """SUBSCRIBE to one channel and wait for its reply (relaying messages of the others meanwhile); False if
        refused (an ACL without the channel: NOPERM)."""
        pubsub.subscribe(channel.name)
        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT
        while True:
            try:
                message = pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
            except redis.ResponseError as exc:
                if is_redis_fault(exc):
                    raise
                self._refused(pubsub, channel, exc)
                return False
            if message is None:
                if time.monotonic() >= deadline:
                    raise redis.TimeoutError(f"no reply to SUBSCRIBE {channel.name} in {SUBSCRIBE_TIMEOUT:g} s")
            elif message["type"] == "subscribe" and reply_text(message["channel"]) == channel.name:
                self._subscribed.add(channel.name)
                if self._failing:
                    logger.info("%s: subscribed again", self._name)
                    self._failing = False
                if channel.name in self._lost:
                    self._lost.discard(channel.name)
                    if channel.on_resubscribed is not None:
                        channel.on_resubscribed()
                return True
            else:
                self._dispatch(message)

    def _refused(self, pubsub: PubSub, channel: Channel, exc: Exception) -> None:
        # redis-py keeps the channel to subscribe again on a reconnect, all channels in one SUBSCRIBE, which the
        # refused one would make fail whole: forget it (asked for again by `_relay`).
        for key in [key for key in pubsub.channels if reply_text(key) == channel.name]:
            del pubsub.channels[key]
        code = "NOPERM" if isinstance(exc, redis.exceptions.NoPermissionError) else type(exc).__name__
        self._complaints.report(
            channel.name,
            "%s: SUBSCRIBE %s refused (%s %s); asking again every %g s. An ACL user needs the channel: &%s",
            self._name,
            channel.name,
            code,
            exc,
            RETRY_REFUSED,
            channel.name,
        )

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") != "message":
            return
        channel = self._channels.get(reply_text(message["channel"]))
        if channel is None:
            return
        try:
            channel.on_message(reply_text(message.get("data") or b""))
        except Exception:  # one bad message must not drop the subscription
            logger.exception("%s: handling a message on %s failed", self._name, channel.name)

    def _tick_due(self) -> float:
        """Call the ticks that are due; returns the seconds until the next one (at most `MAX_WAIT`)."""
        wait = MAX_WAIT
        for name in self._next_tick:
            channel = self._channels[name]
            if channel.tick is not None and time.monotonic() >= self._next_tick[name]:
                try:
                    channel.tick()
                except Exception as exc:  # Redis down: the connection's own failure says so
                    if is_redis_fault(exc):
                        logger.debug("%s: the poll of %s failed (%s)", self._name, name, exc)
                    else:
                        self._complaints.report(f"tick {name}", "%s: the poll of %s failed: %r", self._name, name, exc)
                self._next_tick[name] = time.monotonic() + channel.tick_interval
            wait = min(wait, self._next_tick[name] - time.monotonic())
        return wait
