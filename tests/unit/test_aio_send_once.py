"""workq.aio.send_once on fakeredis: the protocol of the sync sender (test_send_once.py) over redis.asyncio — a
command that may have reached Redis is never sent again, one that cannot have is, once; NOSCRIPT loads the script."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import fakeredis
import pytest
import redis
from fakeredis._clients._async import FakeAsyncRedisConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from workq.aio.send_once import AsyncSendOnce
from workq.scripts import ScriptText
from workq.send_rounds import ReplyLost, ScriptCall

_T = TypeVar("_T")
HANDSHAKE = {b"HELLO", b"CLIENT", b"AUTH", b"SELECT", b"PING"}


class FaultyAsyncConnection(FakeAsyncRedisConnection):
    """Fails where a test says: `fail_writes` writes fail before reaching the server; `lose_replies` replies are
    lost after the server ran the command (a time-out while reading)."""

    fail_writes = 0
    fail_write_after = 0
    lose_replies = 0
    writes = 0
    losing = False

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        cls = type(self)
        if b"".join(command).split(b"\r\n")[2] in HANDSHAKE:
            await super().send_packed_command(command, check_health)
            return
        if cls.fail_writes and cls.fail_write_after == 0:
            cls.fail_writes -= 1
            await self.disconnect()
            raise redis.ConnectionError("Error 32 while writing to socket. Broken pipe.")
        cls.fail_write_after = max(0, cls.fail_write_after - 1)
        cls.writes += 1
        if cls.lose_replies:
            cls.lose_replies -= 1
            self.losing = True
        await super().send_packed_command(command, check_health)

    async def read_response(self, **kwargs: Any) -> Any:
        response = await super().read_response(**kwargs)
        if self.losing:
            self.losing = False
            await self.disconnect()
            raise redis.TimeoutError("Timeout reading from socket")
        return response


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coroutine)


@pytest.fixture
def faulty() -> type[FaultyAsyncConnection]:
    return type("Faulty", (FaultyAsyncConnection,), {})


def client_of(faulty: type[FaultyAsyncConnection], server: fakeredis.FakeServer) -> fakeredis.FakeAsyncRedis:
    """A client whose own command retries are generous: AsyncSendOnce must not use them."""
    return fakeredis.FakeAsyncRedis(server=server, connection_class=faulty, retry=Retry(NoBackoff(), 5))


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def check(server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    """A sync client of the same server, to look at what ran."""
    return fakeredis.FakeRedis(server=server)


def test_commands_are_sent_in_one_write_and_replies_come_back_in_order(
    faulty: type[FaultyAsyncConnection], server: fakeredis.FakeServer
) -> None:
    sender = AsyncSendOnce(client_of(faulty, server))
    assert run(sender.execute([("LPUSH", "q", "a", "b"), ("SADD", "s", "x"), ("LLEN", "q")])) == [2, 1, 2]
    assert faulty.writes == 3


def test_a_lost_reply_is_never_resent_whatever_the_client_retry_settings(
    faulty: type[FaultyAsyncConnection], server: fakeredis.FakeServer, check: fakeredis.FakeRedis
) -> None:
    faulty.lose_replies = 1
    with pytest.raises(ReplyLost, match="did not answer") as lost:
        run(AsyncSendOnce(client_of(faulty, server)).execute([("LPUSH", "q", "job")]))
    assert isinstance(lost.value.cause, redis.TimeoutError)
    assert check.lrange("q", 0, -1) == [b"job"], "ran once, not resent"


def test_a_write_that_failed_is_sent_again_once_on_a_fresh_connection(
    faulty: type[FaultyAsyncConnection], server: fakeredis.FakeServer, check: fakeredis.FakeRedis
) -> None:
    faulty.fail_writes = 1
    assert run(AsyncSendOnce(client_of(faulty, server)).execute([("LPUSH", "q", "job")])) == [1]
    assert check.lrange("q", 0, -1) == [b"job"]


def test_a_second_failed_write_raises_the_fault_and_nothing_ran(
    faulty: type[FaultyAsyncConnection], server: fakeredis.FakeServer, check: fakeredis.FakeRedis
) -> None:
    faulty.fail_writes = 2
    with pytest.raises(redis.ConnectionError, match="Broken pipe"):
        run(AsyncSendOnce(client_of(faulty, server)).execute([("LPUSH", "q", "job")]))
    assert check.exists("q") == 0


def test_a_write_failing_after_a_whole_command_went_out_is_a_lost_reply(
    faulty: type[FaultyAsyncConnection], server: fakeredis.FakeServer, check: fakeredis.FakeRedis
) -> None:
    faulty.fail_writes, faulty.fail_write_after = 1, 1
    with pytest.raises(ReplyLost):
        run(AsyncSendOnce(client_of(faulty, server)).execute([("LPUSH", "q", "a"), ("LPUSH", "q", "b")]))
    assert check.lrange("q", 0, -1) == [b"a"]


def test_a_script_unknown_to_the_server_is_loaded_and_runs_once(
    faulty: type[FaultyAsyncConnection], server: fakeredis.FakeServer, check: fakeredis.FakeRedis
) -> None:
    script = ScriptText.named("wake")  # a real script's SHA: the server checks what it loads
    sender = AsyncSendOnce(client_of(faulty, server))
    call = ScriptCall(script, ["waiting"], ["channel", "x"])
    check.set("waiting", "1")
    assert run(sender.execute([call, ("LPUSH", "q", "job")])) == [1, 1]
    assert check.exists("waiting") == 0 and check.llen("q") == 1


def test_an_error_reply_is_raised_and_the_connection_stays_usable(
    faulty: type[FaultyAsyncConnection], server: fakeredis.FakeServer, check: fakeredis.FakeRedis
) -> None:
    check.set("q", "not a list")
    sender = AsyncSendOnce(client_of(faulty, server))

    async def twice() -> list[Any]:
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            await sender.execute([("LPUSH", "q", "job"), ("SADD", "s", "x")])
        return await sender.execute([("GET", "q")])

    assert run(twice()) == [b"not a list"]
    assert check.smembers("s") == {b"x"}, "the other commands of the write ran"
