"""`workq.send_once` for redis.asyncio: the same protocol (`workq.send_rounds`), so an enqueue awaited on a
redis.asyncio client is written once and never resent by the client's `Retry` once it may have reached Redis."""

from __future__ import annotations

import asyncio
import select
from collections.abc import Sequence
from typing import Any

import redis.asyncio
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import ResponseError

from workq.connection import REDIS_FAULTS, describe
from workq.send_rounds import Command, Item, NotSent, Rounds, read_failed, write_failed


class AsyncSendOnce:
    """Sends commands at most once each over `client`'s pool. Each call borrows one connection (the pool checks
    it is connected and not stale) and gives it back; plain and Sentinel clients (not Redis Cluster)."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._server = describe(client)
        self._pool = client.connection_pool
        self._sentinel = isinstance(self._pool, SentinelConnectionPool)

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """Send `commands` in one write and return their replies, in order. Raises the first error reply, a
        redis-py connection fault when none of the commands ran, or `ReplyLost` when some may have. Cancelled
        while waiting for replies, the connection is dropped and the commands may have run."""
        rounds = Rounds(commands, cluster=False, sentinel=self._sentinel)
        connection: AbstractConnection | None = None
        try:
            while (step := rounds.next_round()) is not None:
                items, actions = step
                if actions.refresh and connection is not None:
                    await connection.disconnect()  # reconnecting looks the master up again (Sentinel)
                try:
                    if connection is None:
                        connection = await self._checkout()
                    answers = await _exchange(connection, items, self._server, sentinel=self._sentinel)
                except NotSent as unsent:
                    rounds.not_sent(unsent)
                    continue
                rounds.answered(answers)
        finally:
            if connection is not None:
                await self._pool.release(connection)
        return rounds.result()

    async def _checkout(self) -> AbstractConnection:
        try:
            connection: AbstractConnection = await self._pool.get_connection()  # type: ignore[no-untyped-call]
        except REDIS_FAULTS as exc:
            raise NotSent(exc) from exc
        return connection


async def _exchange(connection: AbstractConnection, items: list[Item], server: str, *, sentinel: bool) -> list[Any]:
    """Write every item, then read every reply (see `workq.send_rounds` for what a failure on the way means)."""
    await _make_ready(connection)
    packets = [connection.pack_command(*command) for command, _ in items]
    for position, packet in enumerate(packets):
        try:
            await connection.send_packed_command(packet, check_health=position == 0)
        except REDIS_FAULTS as exc:
            await connection.disconnect()
            raise write_failed(items, position, server, exc) from exc
    answers: list[Any] = []
    for position, (_, counts) in enumerate(items):
        try:
            if sentinel:  # its own read_response turns READONLY into a ConnectionError: read it as the refusal
                answer = await AbstractConnection.read_response(connection)
            else:
                answer = await connection.read_response()
        except ResponseError as refusal:
            answer = refusal
        except BaseException as exc:
            await asyncio.shield(connection.disconnect(nowait=True))
            answer = read_failed(items, position, server, exc)
        if counts:
            answers.append(answer)
    return answers


async def _make_ready(connection: AbstractConnection) -> None:
    """Connect, or reconnect if Redis closed this idle connection: the pool's check reads only what the event loop
    has taken off the socket already, and a loop busy elsewhere may not have seen the EOF yet. `connect()` is the
    connection's own (a Sentinel one asks the sentinels for the master; the write path would redial the old one)."""
    if connection.is_connected:
        if not _unread_bytes_waiting(connection):
            return
        await connection.disconnect()
    try:
        await connection.connect()  # type: ignore[no-untyped-call]
    except REDIS_FAULTS as exc:
        raise NotSent(exc) from exc


def _unread_bytes_waiting(connection: AbstractConnection) -> bool:
    """Whether the socket of this idle, plain-TCP or unix connection is readable (EOF, most likely). TLS is left
    to the pool's check: a readable TLS socket may hold session tickets."""
    writer = getattr(connection, "_writer", None)
    if writer is None or writer.get_extra_info("sslcontext") is not None:
        return False
    sock = writer.get_extra_info("socket")
    return sock is not None and bool(select.select([sock.fileno()], [], [], 0)[0])
