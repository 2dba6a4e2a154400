"""`workq.send_once` for redis.asyncio: the same protocol (`workq.send_rounds`), so an enqueue awaited on a
redis.asyncio client (plain, Sentinel or Redis Cluster) is written once and never resent by the client's `Retry`
once it may have reached Redis."""

from __future__ import annotations

import asyncio
import select
from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import Redis as AsyncRedis
from redis.asyncio import RedisCluster as AsyncRedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import AskError, ResponseError

from workq.connection import REDIS_FAULTS, describe
from workq.send_rounds import Actions, Command, Item, NotSent, Rounds, first_key, read_failed, write_failed


class AsyncSendOnce:
    """Sends commands at most once each over `client`'s connections. Each round borrows one connection (of the
    pool, or on Redis Cluster of the slot's node) and gives it back."""

    def __init__(self, client: AsyncRedis | AsyncRedisCluster) -> None:
        self._server = describe(client)
        self._cluster = client if isinstance(client, AsyncRedisCluster) else None
        self._pool = None if isinstance(client, AsyncRedisCluster) else client.connection_pool
        self._sentinel = isinstance(self._pool, SentinelConnectionPool)

    async def execute(self, commands: Sequence[Command], optional: int = 0) -> list[Any]:
        """Send `commands` in one write and return their replies, in order. On Redis Cluster they must share a
        slot (a namespace's keys do). Raises the first error reply (but returns those of the last `optional`
        commands), a redis-py connection fault when none of the commands ran, or `ReplyLost` when some may have.
        Cancelled while waiting for replies, the connection is dropped and the commands may have run."""
        if self._cluster is not None:
            await self._cluster.initialize()  # the slot map, on first use (a no-op after)
        rounds = Rounds(commands, cluster=self._cluster is not None, sentinel=self._sentinel)
        while (step := rounds.next_round()) is not None:
            items, actions = step
            await self._act(actions)
            try:
                answers = await self._exchange(items, rounds.asking, rounds.routed_by)
            except NotSent as unsent:
                rounds.not_sent(unsent)
                continue
            rounds.answered(answers)
        return rounds.result(optional)

    async def _act(self, actions: Actions) -> None:
        if self._cluster is not None:
            for moved in actions.moved:
                await self._cluster.nodes_manager.move_slot(moved)
        if actions.refresh:  # a failover or a failed connection: look the server(s) up again
            if self._cluster is not None:
                await self._cluster.nodes_manager.initialize()
            else:
                await cast(ConnectionPool, self._pool).disconnect(inuse_connections=False)
        if actions.delay:
            await asyncio.sleep(actions.delay)

    async def _exchange(self, items: list[Item], asking: AskError | None, routed_by: Command) -> list[Any]:
        """One write of `items` on a borrowed connection, and the replies of those that count."""
        if self._cluster is None:
            pool = cast(ConnectionPool, self._pool)
            try:
                connection: AbstractConnection = await pool.get_connection()  # type: ignore[no-untyped-call]
            except REDIS_FAULTS as exc:
                raise NotSent(exc) from exc
            try:
                return await _exchange(connection, items, self._server, sentinel=self._sentinel)
            finally:
                await pool.release(connection)
        node = self._node(self._cluster, asking, routed_by)
        try:
            connection = node.acquire_connection()
        except REDIS_FAULTS as exc:
            raise NotSent(exc) from exc
        try:
            return await _exchange(connection, items, node.name, sentinel=False)
        finally:
            node.release(connection)

    @staticmethod
    def _node(cluster: AsyncRedisCluster, asking: AskError | None, routed_by: Command) -> ClusterNode:
        if asking is None:
            return cluster.nodes_manager.get_node_from_slot(cluster.keyslot(first_key(routed_by)))
        known = cluster.nodes_manager.get_node(asking.host, asking.port)
        return known or ClusterNode(asking.host, asking.port, **cluster.nodes_manager.connection_kwargs)


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
