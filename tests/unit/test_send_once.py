"""send_once: a command that may have reached Redis is never sent again; one that cannot have is, once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis
from fakeredis._clients._sync import FakeRedisConnection
from redis.backoff import NoBackoff
from redis.retry import Retry

from workq.scripts import LuaScript
from workq.send_once import ReplyLost, ScriptCall, SendOnce

COUNT_CALLS = "return redis.call('incr', KEYS[1])"
HANDSHAKE = {b"HELLO", b"CLIENT", b"AUTH", b"SELECT"}
"""What redis-py sends when it connects: not counted, never failed."""


class FaultyConnection(FakeRedisConnection):
    """A fakeredis connection that fails where a test says: `fail_writes` writes fail before reaching the server;
    `lose_replies` replies are lost after the server ran the command (a time-out while reading)."""

    fail_writes = 0
    fail_write_after = 0
    """Writes that succeed before the failing ones start (a batch's second command, say)."""
    lose_replies = 0
    writes = 0
    written = 0
    """Commands this one connection wrote (`writes`: all connections of the class)."""
    losing = False

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        cls = type(self)
        if b"".join(command).split(b"\r\n")[2] in HANDSHAKE:
            super().send_packed_command(command, check_health)
            return
        if cls.fail_writes and cls.fail_write_after == 0:
            cls.fail_writes -= 1
            self.disconnect()
            raise redis.ConnectionError("Error 32 while writing to socket. Broken pipe.")
        cls.fail_write_after = max(0, cls.fail_write_after - 1)
        cls.writes += 1
        self.written += 1
        if cls.lose_replies:
            cls.lose_replies -= 1
            self.losing = True
        super().send_packed_command(command, check_health)

    def read_response(self, **kwargs: Any) -> Any:
        response = super().read_response(**kwargs)
        if self.losing:
            self.losing = False
            self.disconnect()
            raise redis.TimeoutError("Timeout reading from socket")
        return response


@pytest.fixture
def faulty() -> type[FaultyConnection]:
    """A FaultyConnection class of the test's own (its fault counters are class attributes)."""
    return type("Faulty", (FaultyConnection,), {})


@pytest.fixture
def client(faulty: type[FaultyConnection]) -> Iterator[fakeredis.FakeRedis]:
    """A client whose own command retries are generous: SendOnce must not use them."""
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), connection_class=faulty, retry=Retry(NoBackoff(), 5))
    yield client
    client.close()


def test_commands_are_sent_in_one_write_and_replies_come_back_in_order(
    client: fakeredis.FakeRedis, faulty: type[FaultyConnection]
) -> None:
    replies = SendOnce(client).execute([("LPUSH", "q", "a", "b"), ("SADD", "s", "x"), ("LLEN", "q")])
    assert replies == [2, 1, 2]
    assert faulty.writes == 3, "each command written once"


def test_a_lost_reply_is_never_resent_whatever_the_client_retry_settings(
    client: fakeredis.FakeRedis, faulty: type[FaultyConnection]
) -> None:
    faulty.lose_replies = 1
    with pytest.raises(ReplyLost, match="did not answer") as lost:
        SendOnce(client).execute([("LPUSH", "q", "job")])
    assert isinstance(lost.value.cause, redis.TimeoutError)
    assert client.lrange("q", 0, -1) == [b"job"], "ran once, not resent"


def test_a_write_that_failed_is_sent_again_once_on_a_fresh_connection(
    client: fakeredis.FakeRedis, faulty: type[FaultyConnection]
) -> None:
    faulty.fail_writes = 1
    assert SendOnce(client).execute([("LPUSH", "q", "job")]) == [1]
    assert client.lrange("q", 0, -1) == [b"job"]


def test_a_second_failed_write_raises_the_fault_and_nothing_ran(
    client: fakeredis.FakeRedis, faulty: type[FaultyConnection]
) -> None:
    faulty.fail_writes = 2
    with pytest.raises(redis.ConnectionError, match="Broken pipe"):
        SendOnce(client).execute([("LPUSH", "q", "job")])
    assert client.exists("q") == 0


def test_a_write_failing_after_a_whole_command_went_out_is_a_lost_reply(
    client: fakeredis.FakeRedis, faulty: type[FaultyConnection]
) -> None:
    """The first LPUSH of the batch was written whole, so it may have run: the batch is not sent again."""
    faulty.fail_writes, faulty.fail_write_after = 1, 1
    with pytest.raises(ReplyLost):
        SendOnce(client).execute([("LPUSH", "q", "a"), ("LPUSH", "q", "b")])
    assert client.lrange("q", 0, -1) == [b"a"]


def test_an_unreachable_server_raises_its_connection_fault() -> None:
    server = fakeredis.FakeServer()
    server.connected = False
    with pytest.raises(redis.ConnectionError):
        SendOnce(fakeredis.FakeRedis(server=server)).execute([("LPUSH", "q", "job")])


def test_a_script_unknown_to_the_server_is_loaded_and_runs_once(client: fakeredis.FakeRedis) -> None:
    script = LuaScript(client, COUNT_CALLS)
    sender = SendOnce(client)
    assert sender.execute([ScriptCall(script, ["calls"], [])]) == [1]
    client.script_flush()
    assert sender.execute([ScriptCall(script, ["calls"], []), ("LPUSH", "q", "job")]) == [2, 1]
    assert client.get("calls") == b"2" and client.llen("q") == 1


def test_an_error_reply_is_raised_and_the_connection_stays_usable(client: fakeredis.FakeRedis) -> None:
    client.set("q", "not a list")
    sender = SendOnce(client)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        sender.execute([("LPUSH", "q", "job"), ("SADD", "s", "x")])
    assert client.smembers("s") == {b"x"}, "the other commands of the write ran"
    assert sender.execute([("GET", "q")]) == [b"not a list"]


def test_a_forked_child_takes_a_connection_of_its_own_and_leaves_the_parents_alone(
    client: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = SendOnce(client)
    sender.execute([("PING",)])
    sender.execute([("PING",)])
    (parents,) = client.connection_pool._in_use_connections
    assert parents.written == 2, "a thread keeps its connection"
    parent_pid = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: parent_pid + 1)  # as in a child after fork()
    sender.execute([("PING",)])
    assert parents.written == 2 and parents._sock is not None, "the parent's socket is neither used nor closed"
