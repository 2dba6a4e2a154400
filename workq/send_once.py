"""Commands that must never be sent twice (an LPUSH, a script that enqueues): each is written once, on a connection
taken straight from the client's pool, and never resent once it may have reached Redis.

redis-py's `Retry` resends a command whose reply timed out, though Redis may have run it; so do pipelines. Here a
failure before anything could have run — no connection, a stale one, a failed write (Redis never runs a partial
command, and the connection is dropped) — is retried once on a fresh connection; a failure after the write raises
`ReplyLost`. The protocol itself (rounds, refusals that mean "not run") is `workq.send_rounds`, shared with the
asyncio driver `workq.aio.send_once`.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from typing import Any, Protocol, cast

from redis.cluster import ClusterNode, RedisCluster
from redis.connection import AbstractConnection, Connection, ConnectionPool
from redis.exceptions import AskError, ResponseError
from redis.sentinel import SentinelConnectionPool

from workq.connection import REDIS_FAULTS, RedisClient, describe
from workq.send_rounds import (
    Actions,
    Command,
    Item,
    NotSent,
    ReplyLost,
    Rounds,
    ScriptCall,
    first_key,
    read_failed,
    write_failed,
)

__all__ = ["Command", "ReplyLost", "ScriptCall", "SendOnce"]


class _Connection(Protocol):
    """What is used of a redis-py connection (`redis.connection.AbstractConnection` and kin)."""

    pid: int

    def can_read(self, timeout: float = 0) -> bool: ...
    def connect(self) -> None: ...
    def disconnect(self, *args: Any, **kwargs: Any) -> None: ...
    def pack_command(self, *args: Any) -> list[bytes]: ...
    def send_packed_command(self, command: list[bytes], check_health: bool = True) -> None: ...
    def read_response(self, disable_decoding: bool = False) -> Any: ...


class SendOnce:
    """Sends commands at most once each, over `client`'s pools but not through its command-level retries.

    Thread-safe. On a plain or Sentinel client each thread keeps one connection of the pool (checked for staleness
    before each write, replaced in a forked child); on Redis Cluster each call borrows one from the slot's node.
    """

    def __init__(self, client: RedisClient) -> None:
        self._server = describe(client)
        self._cluster = client if isinstance(client, RedisCluster) else None
        self._pool: ConnectionPool | None = None if isinstance(client, RedisCluster) else client.connection_pool
        self._sentinel = isinstance(self._pool, SentinelConnectionPool)
        self._local = threading.local()

    def execute(self, commands: Sequence[Command], optional: int = 0) -> list[Any]:
        """Send `commands` in one write and return their replies, in order. On Redis Cluster they must share a
        slot (a namespace's keys do). Raises the first error reply (but returns those of the last `optional`
        commands), a redis-py connection fault when none of the commands ran, or `ReplyLost` when some may have."""
        rounds = Rounds(commands, cluster=self._cluster is not None, sentinel=self._sentinel)
        while (step := rounds.next_round()) is not None:
            items, actions = step
            self._act(actions)
            try:
                answers = self._exchange(items, rounds.asking, rounds.routed_by)
            except NotSent as unsent:
                rounds.not_sent(unsent)
                continue
            rounds.answered(answers)
        return rounds.result(optional)

    def _act(self, actions: Actions) -> None:
        if self._cluster is not None:
            for moved in actions.moved:
                self._cluster.nodes_manager.move_slot(moved)
        if actions.refresh:
            self._refresh_topology()
        if actions.delay:
            time.sleep(actions.delay)

    def _exchange(self, items: list[Item], asking: AskError | None, routed_by: Command) -> list[Any]:
        """One write of `items` and the replies of those that count (error replies as exception objects)."""
        if self._cluster is None:
            return _exchange(self._thread_connection(), items, self._server, sentinel=self._sentinel)
        if asking is not None:
            node = self._cluster.nodes_manager.get_node(asking.host, asking.port) or ClusterNode(
                asking.host, asking.port
            )  # type: ignore[no-untyped-call]
        else:
            slot = self._cluster.keyslot(first_key(routed_by))  # type: ignore[no-untyped-call]
            node = self._cluster.nodes_manager.get_node_from_slot(slot)
        pool = self._cluster.get_redis_connection(node).connection_pool
        try:
            connection = _checkout(pool)
        except REDIS_FAULTS as exc:
            raise NotSent(exc) from exc
        try:
            return _exchange(connection, items, node.name, sentinel=False)
        finally:
            pool.release(cast(Connection, connection))

    def _thread_connection(self) -> _Connection:
        """This thread's connection, made afresh in a forked child: the parent's socket is never written, read or
        shut down from here (the parent may be using it)."""
        held: _Held | None = getattr(self._local, "held", None)
        if held is None or held.pid != os.getpid():
            try:
                held = self._local.held = _Held(cast(ConnectionPool, self._pool))
            except REDIS_FAULTS as exc:
                raise NotSent(exc) from exc
        return held.connection

    def _refresh_topology(self) -> None:
        """After a failure before the write or a READONLY reply: the next attempt looks the server up again."""
        if self._cluster is not None:
            self._cluster.nodes_manager.initialize()
        else:
            held: _Held | None = getattr(self._local, "held", None)
            if held is not None and held.pid == os.getpid():
                held.connection.disconnect()


def _exchange(connection: _Connection, items: list[Item], server: str, *, sentinel: bool) -> list[Any]:
    """Write every item, then read every reply (see `workq.send_rounds` for what a failure on the way means)."""
    _make_ready(connection)
    packets = [connection.pack_command(*command) for command, _ in items]
    for position, packet in enumerate(packets):
        try:
            connection.send_packed_command(packet, check_health=position == 0)
        except REDIS_FAULTS as exc:
            connection.disconnect()  # redis-py has dropped it already; the partial command dies with it
            raise write_failed(items, position, server, exc) from exc
    answers: list[Any] = []
    for position, (_, counts) in enumerate(items):
        try:
            answer = _read_past_sentinel(connection) if sentinel else connection.read_response()
        except ResponseError as refusal:
            answer = refusal
        except BaseException as exc:
            connection.disconnect()
            answer = read_failed(items, position, server, exc)
        if counts:
            answers.append(answer)
    return answers


def _make_ready(connection: _Connection) -> None:
    """Connect, or reconnect if something is waiting to be read on this idle connection — EOF, most likely: Redis
    closed it (a restart, an idle time-out, CLIENT KILL), and a command written on it would be lost unanswered.
    `connect()` is the connection's own (a Sentinel one asks the sentinels for the master; the write would not)."""
    sock = getattr(connection, "_sock", None)
    if sock is not None:
        if type(sock) is socket.socket:  # a poll is a third of redis-py's can_read (TLS needs the latter: tickets)
            stale = bool(select.select([sock], [], [], 0)[0])
        else:
            try:
                stale = connection.can_read()
            except REDIS_FAULTS:
                stale = True
        if not stale:
            return
        connection.disconnect()
    try:
        connection.connect()
    except REDIS_FAULTS as exc:
        raise NotSent(exc) from exc


def _read_past_sentinel(connection: _Connection) -> Any:
    """A Sentinel connection's own `read_response` turns READONLY into a ConnectionError (and drops the connection):
    read it as the refusal it is."""
    return AbstractConnection.read_response(cast(AbstractConnection, connection))


class _Held:
    """One pool connection kept by one thread, given back when the thread (or the sender) is gone."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.pid = os.getpid()
        self.connection = _checkout(pool)

    def __del__(self) -> None:
        if self.pid == os.getpid():
            with suppress(Exception):
                self.pool.release(cast(Connection, self.connection))


def _checkout(pool: ConnectionPool) -> _Connection:
    """A connected connection of `pool`, checked by the pool (not stale, right process)."""
    return cast(_Connection, pool.get_connection())
