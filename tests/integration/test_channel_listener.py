"""A pool's one pub/sub connection on a redis-server of the test's own: both channels ride it, each message reaches its
own channel's handler, a channel an ACL refuses is logged once naming it while the other keeps working (and is
subscribed as soon as the ACL allows it), the poll ticks regardless, and a dropped connection is subscribed again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redis_servers import RedisServer
from support import wait_until
from workq.channel_listener import Channel, ChannelListener

WAKE, CANCEL = "ns:wake", "ns:cancel"
USER, PASSWORD = "pool", "pool-secret"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Heard:
    """What each channel's handlers were given."""

    def __init__(self) -> None:
        self.messages: dict[str, list[str]] = {WAKE: [], CANCEL: []}
        self.resubscribed: dict[str, int] = {WAKE: 0, CANCEL: 0}
        self.ticks = 0
        self.lock = threading.Lock()

    def channels(self) -> list[Channel]:
        return [
            Channel(WAKE, lambda text: self._heard(WAKE, text), on_resubscribed=lambda: self._resubscribed(WAKE)),
            Channel(
                CANCEL,
                lambda text: self._heard(CANCEL, text),
                on_resubscribed=lambda: self._resubscribed(CANCEL),
                tick=self._tick,
                tick_interval=0.05,
            ),
        ]

    def _heard(self, channel: str, text: str) -> None:
        with self.lock:
            self.messages[channel].append(text)

    def _resubscribed(self, channel: str) -> None:
        with self.lock:
            self.resubscribed[channel] += 1

    def _tick(self) -> None:
        with self.lock:
            self.ticks += 1


def subscribers(admin: redis.Redis) -> list[dict[str, str]]:
    return [client for client in admin.client_list() if client.get("flags") == "P"]


def publish_until_heard(admin: redis.Redis, heard: Heard, channel: str, text: str) -> None:
    """Publish until the listener has heard it (a message sent before its subscription landed is lost)."""

    def delivered() -> bool:
        admin.publish(channel, text)
        return text in heard.messages[channel]

    wait_until(delivered, timeout=10, interval=0.05, what=f"{text!r} on {channel} to reach its handler")


def test_both_channels_ride_one_connection_and_reach_their_own_handlers(server: RedisServer) -> None:
    admin = server.client()
    heard = Heard()
    listener = ChannelListener(redis.Redis.from_url(server.url), heard.channels())
    listener.start()
    try:
        wait_until(lambda: admin.pubsub_numsub(WAKE, CANCEL) == [(WAKE.encode(), 1), (CANCEL.encode(), 1)])
        [connection] = subscribers(admin)
        assert connection["sub"] == "2"
        publish_until_heard(admin, heard, WAKE, "work")
        publish_until_heard(admin, heard, CANCEL, "job-1")
    finally:
        listener.stop()
    assert "job-1" not in heard.messages[WAKE] and "work" not in heard.messages[CANCEL]
    assert heard.ticks >= 1
    assert subscribers(admin) == []


def test_a_channel_the_acl_refuses_is_named_once_while_the_other_works_and_is_taken_once_allowed(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    admin = server.client()
    commands = ["-@all", "+subscribe", "+publish", "+ping"]
    admin.acl_setuser(USER, enabled=True, passwords=[f"+{PASSWORD}"], keys=["ns:*"], channels=[WAKE], commands=commands)
    heard = Heard()
    user = redis.Redis.from_url(server.url, username=USER, password=PASSWORD)
    listener = ChannelListener(user, heard.channels())
    with caplog.at_level(logging.ERROR, logger="workq"):
        listener.start()
        try:
            publish_until_heard(admin, heard, WAKE, "work")
            ticks = heard.ticks
            wait_until(lambda: heard.ticks > ticks + 5, what="the poll to keep ticking while its channel is refused")
            refusals = [record.getMessage() for record in caplog.records if "NOPERM" in record.getMessage()]
            assert len(refusals) == 1, "logged once a minute, not once per retry"
            assert f"An ACL user needs the channel: &{CANCEL}" in refusals[0]

            admin.acl_setuser(USER, enabled=True, channels=[CANCEL])
            publish_until_heard(admin, heard, CANCEL, "job-1")
        finally:
            listener.stop()
    assert heard.messages[WAKE].count("work") >= 1 and heard.resubscribed == {WAKE: 0, CANCEL: 0}


def test_a_dropped_connection_is_subscribed_again_and_each_channel_told_its_messages_were_lost(
    server: RedisServer,
) -> None:
    admin = server.client()
    heard = Heard()
    listener = ChannelListener(redis.Redis.from_url(server.url), heard.channels())
    listener.start()
    try:
        publish_until_heard(admin, heard, WAKE, "before")
        admin.client_kill_filter(_type="pubsub")
        wait_until(lambda: heard.resubscribed == {WAKE: 1, CANCEL: 1}, what="both channels subscribed again")
        publish_until_heard(admin, heard, WAKE, "after")
        publish_until_heard(admin, heard, CANCEL, "job-2")
        assert len(subscribers(admin)) == 1
    finally:
        listener.stop()
