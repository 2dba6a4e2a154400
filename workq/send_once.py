"""Commands that must never be sent twice (an LPUSH, a script that enqueues): each is written once, on a connection
taken straight from the client's pool, and never resent once it may have reached Redis.

redis-py's `Retry` resends a command whose reply timed out, though Redis may have run it; so do pipelines. Here a
failure before anything could have run — no connection, a stale one, a failed write (Redis never runs a partial
command, and the connection is dropped) — is retried once on a fresh connection; a failure after the write raises
`ReplyLost`. Replies that say the command did not run are acted on and the command sent again: NOSCRIPT (SCRIPT
LOAD first), MOVED / ASK / TRYAGAIN / CLUSTERDOWN on Redis Cluster, READONLY after a Sentinel or Cluster failover.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, TypeAlias, cast

from redis.cluster import ClusterNode, RedisCluster
from redis.connection import AbstractConnection, Connection, ConnectionPool
from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.sentinel import SentinelConnectionPool

from workq.connection import REDIS_FAULTS, RedisClient, describe
from workq.scripts import Arg, LuaScript

ROUNDS = 16
"""Rounds one call may take while Redis answers "not run, try again" (redirects, TRYAGAIN, NOSCRIPT, READONLY)."""
BACKOFF = 0.05
BACKOFF_CAP = 0.5
"""Seconds before resending after TRYAGAIN or CLUSTERDOWN: doubling from BACKOFF, at most BACKOFF_CAP."""


class ScriptCall(NamedTuple):
    """EVALSHA of `script`; its source is loaded when the server answers NOSCRIPT."""

    script: LuaScript
    keys: Sequence[str]
    args: Sequence[Arg]


Command: TypeAlias = "tuple[Arg, ...] | ScriptCall"
"""A plain command, e.g. ("LPUSH", key, value), or a script call."""


class ReplyLost(Exception):
    """Commands were written to Redis but their replies did not come back: each may or may not have run."""

    def __init__(self, server: str, cause: BaseException) -> None:
        super().__init__(f"Redis at {server} did not answer: {cause}")
        self.server = server
        self.cause = cause


class _Connection(Protocol):
    """What is used of a redis-py connection (`redis.connection.AbstractConnection` and kin)."""

    pid: int

    def can_read(self, timeout: float = 0) -> bool: ...
    def connect(self) -> None: ...
    def disconnect(self, *args: Any, **kwargs: Any) -> None: ...
    def pack_command(self, *args: Any) -> list[bytes]: ...
    def send_packed_command(self, command: list[bytes], check_health: bool = True) -> None: ...
    def read_response(self, disable_decoding: bool = False) -> Any: ...


class _NotSent(Exception):
    """Nothing that may not be repeated reached Redis: `cause` is the fault met on the way."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


_Item: TypeAlias = "tuple[tuple[Arg, ...], bool]"
"""A command as written, and whether it counts (False: SCRIPT LOAD, ASKING, which may be repeated)."""


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

    def execute(self, commands: Sequence[Command]) -> list[Any]:
        """Send `commands` in one write and return their replies, in order. On Redis Cluster they must share a
        slot (a namespace's keys do). Raises the first error reply, a redis-py connection fault when none of the
        commands ran, or `ReplyLost` when some may have."""
        replies: list[Any] = [None] * len(commands)
        pending = list(range(len(commands)))
        plan = _NO_PLAN
        resent_unsent = False
        for _ in range(ROUNDS):
            items: list[_Item] = [(("SCRIPT", "LOAD", source), False) for source in plan.loads.values()]
            for index in pending:
                if plan.asking is not None:
                    items.append((("ASKING",), False))
                items.append((_written(commands[index]), True))
            try:
                answers = self._exchange(items, plan.asking, commands[pending[0]])
            except _NotSent as unsent:
                if resent_unsent:
                    raise unsent.cause from None
                resent_unsent = True
                self._refresh_topology()
                continue
            plan, pending = self._sort_out(commands, pending, answers, replies, plan)
            if not pending:
                break
            if plan.delay:
                time.sleep(plan.delay)
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise reply
        return replies

    def script(self, script: LuaScript, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """`execute` of one script call: its reply."""
        return self.execute([ScriptCall(script, keys, args)])[0]

    def _sort_out(
        self, commands: Sequence[Command], pending: list[int], answers: list[Any], replies: list[Any], plan: _Plan
    ) -> tuple[_Plan, list[int]]:
        """Keep a round's answers in `replies`; return what the next round does first and the commands it resends
        (those whose replies said they did not run)."""
        resend: list[int] = []
        next_plan: _Plan | None = None
        for index, answer in zip(pending, answers, strict=True):
            replies[index] = answer
            if isinstance(answer, ResponseError):
                next_plan = next_plan or _Plan(backoff=plan.backoff)
                if self._not_run(commands[index], answer, next_plan):
                    resend.append(index)
        return next_plan or _NO_PLAN, resend

    def _not_run(self, command: Command, refusal: ResponseError, plan: _Plan) -> bool:
        """True when `refusal` says `command` did not run and may be sent again; `plan` gets what to do first."""
        if isinstance(refusal, NoScriptError) and isinstance(command, ScriptCall):
            plan.loads[command.script.sha] = command.script.source
            return True
        if self._cluster is not None:
            if isinstance(refusal, MovedError):
                self._cluster.nodes_manager.move_slot(refusal)
                return True
            if isinstance(refusal, AskError):
                node = self._cluster.nodes_manager.get_node(refusal.host, refusal.port)
                plan.asking = node or ClusterNode(refusal.host, refusal.port)  # type: ignore[no-untyped-call]
                return True
            if isinstance(refusal, (TryAgainError, ClusterDownError)):
                plan.back_off()
                return True
        if isinstance(refusal, ReadOnlyError) and (self._cluster is not None or self._sentinel):
            self._refresh_topology()  # a failover demoted the server we reached
            return True
        return False

    def _exchange(self, items: list[_Item], asking: ClusterNode | None, routed_by: Command) -> list[Any]:
        """One write of `items` and the replies of those that count (error replies as exception objects)."""
        if self._cluster is None:
            return _exchange(self._thread_connection(), items, self._server, sentinel=self._sentinel)
        slot = self._cluster.keyslot(_first_key(routed_by))  # type: ignore[no-untyped-call]
        node = asking or self._cluster.nodes_manager.get_node_from_slot(slot)
        pool = self._cluster.get_redis_connection(node).connection_pool
        try:
            connection = _checkout(pool)
        except REDIS_FAULTS as exc:
            raise _NotSent(exc) from exc
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
                raise _NotSent(exc) from exc
        return held.connection

    def _refresh_topology(self) -> None:
        """After a failure before the write or a READONLY reply: the next attempt looks the server up again."""
        if self._cluster is not None:
            self._cluster.nodes_manager.initialize()
        else:
            held: _Held | None = getattr(self._local, "held", None)
            if held is not None and held.pid == os.getpid():
                held.connection.disconnect()


def _exchange(connection: _Connection, items: list[_Item], server: str, *, sentinel: bool) -> list[Any]:
    """Write every item, then read every reply; see the module docstring for which failures are `_NotSent`."""
    _make_ready(connection)
    packets = [connection.pack_command(*command) for command, _ in items]
    for position, packet in enumerate(packets):
        try:
            connection.send_packed_command(packet, check_health=position == 0)
        except REDIS_FAULTS as exc:
            connection.disconnect()  # redis-py has dropped it already; the partial command dies with it
            if any(counts for _, counts in items[:position]):
                raise ReplyLost(server, exc) from exc
            raise _NotSent(exc) from exc
    answers: list[Any] = []
    for position, (_, counts) in enumerate(items):
        try:
            answer = _read_past_sentinel(connection) if sentinel else connection.read_response()
        except ResponseError as refusal:
            answer = refusal
        except BaseException as exc:
            connection.disconnect()
            if isinstance(exc, BusyLoadingError) and position == len(items) - 1:
                answer = exc  # LOADING: the last command was refused; the others have answered
            elif isinstance(exc, Exception):
                raise ReplyLost(server, exc) from exc
            else:
                raise
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
        raise _NotSent(exc) from exc


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


@dataclass
class _Plan:
    """What the next round does first: scripts to load, the node to ask (ASK), a pause (TRYAGAIN, CLUSTERDOWN)."""

    loads: dict[str, str] = field(default_factory=dict)
    asking: ClusterNode | None = None
    delay: float = 0.0
    backoff: float = BACKOFF

    def back_off(self) -> None:
        self.delay = self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_CAP)


_NO_PLAN = _Plan()
"""The first round's: nothing to do first. Never changed."""


def _written(command: Command) -> tuple[Arg, ...]:
    if isinstance(command, ScriptCall):
        return ("EVALSHA", command.script.sha, len(command.keys), *command.keys, *command.args)
    return command


def _checkout(pool: ConnectionPool) -> _Connection:
    """A connected connection of `pool`, checked by the pool (not stale, right process)."""
    return cast(_Connection, pool.get_connection())


def _first_key(command: Command) -> str | bytes:
    if isinstance(command, ScriptCall):
        return command.keys[0]
    key = command[1]
    return key if isinstance(key, (str, bytes)) else str(key)
