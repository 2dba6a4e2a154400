"""The Lua scripts, one per atomic operation, each called by its SHA and loaded on demand."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.exceptions import NoScriptError

from workq.connection import RedisClient

Arg = str | bytes | int | float


@cache
def _source(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.lua").read_text(encoding="utf-8")


@dataclass(frozen=True)
class ScriptText:
    """A script's source and SHA, without a client: what a call through `workq.send_once` needs."""

    source: str
    sha: str

    @classmethod
    def named(cls, name: str) -> ScriptText:
        source = _source(name)
        return cls(source, hashlib.sha1(source.encode("utf-8")).hexdigest())


class LuaScript:
    """EVALSHA straight through `execute_command` — the leanest call redis-py has, a tenth cheaper than its
    `Script` objects — and SCRIPT LOAD when the server answers NOSCRIPT (first use, a restart, a failover)."""

    def __init__(self, client: RedisClient, source: str) -> None:
        self._client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8")).hexdigest()

    def __call__(self, keys: Sequence[str] = (), args: Sequence[Arg] = (), client: RedisClient | None = None) -> Any:
        target = self._client if client is None else client
        try:
            return target.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
        except NoScriptError:
            target.script_load(self.source)
            return target.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]


ScriptCall = tuple[LuaScript, Sequence[str], Sequence[Arg]]
"""A script, its KEYS and its ARGV."""


def call_many(calls: Sequence[ScriptCall], client: RedisClient) -> list[Any]:
    """Script calls in one round trip, in order: on a single-connection client, written together on its connection;
    otherwise a pipeline (one by one on a cluster client, whose keys may differ in slot). A failed call's reply is its
    `ResponseError`, in its place: the others still ran. A connection fault raises, and is not retried here (the
    calls may have run)."""
    if len(calls) == 1 or not isinstance(client, redis.Redis):
        return [_reply_or_error(functools.partial(script, keys, args, client)) for script, keys, args in calls]
    commands = [("EVALSHA", script.sha, len(keys), *keys, *args) for script, keys, args in calls]
    connection = client.connection
    if connection is not None and connection.pid == os.getpid():
        replies = _on_connection(client, connection, commands)
    else:
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        replies = pipe.execute(raise_on_error=False)
    # Calls answered NOSCRIPT did nothing (a restarted or failed-over server): each is sent again, loading its script.
    return [
        _reply_or_error(functools.partial(script, keys, args, client)) if isinstance(reply, NoScriptError) else reply
        for reply, (script, keys, args) in zip(replies, calls, strict=True)
    ]


def _on_connection(client: redis.Redis, connection: Any, commands: list[tuple[Arg, ...]]) -> list[Any]:
    """Commands written at once on a single-connection client's own connection, then every reply read (a pipeline
    would take a second connection from the pool, and costs more)."""
    with getattr(client, "single_connection_lock", None) or contextlib.nullcontext():
        try:
            connection.send_packed_command(connection.pack_commands(commands))
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
        except BaseException:
            connection.disconnect()  # replies may be left unread on it: never reuse it as is
            raise
    return replies


def _reply_or_error(call: Callable[[], Any]) -> Any:
    """A script's reply, or the `ResponseError` it answered with (a connection fault still raises)."""
    try:
        return call()
    except redis.ResponseError as exc:
        return exc


@dataclass(frozen=True)
class Scripts:
    wake: LuaScript
    fetch: LuaScript
    ack: LuaScript
    requeue: LuaScript
    enqueue_unique: LuaScript
    periodic_enqueue: LuaScript
    reap: LuaScript
    expire_leases: LuaScript
    extend_lease: LuaScript
    release_lock: LuaScript
    remove_job: LuaScript
    cancel_running: LuaScript
    purge_queue: LuaScript
    drop_ticks: LuaScript

    @classmethod
    def register(cls, client: RedisClient) -> Scripts:
        return cls(**{name: LuaScript(client, _source(name)) for name in cls.__dataclass_fields__})
