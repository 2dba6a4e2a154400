"""The send-once protocol without its I/O, driven by `workq.send_once` (threads) and `workq.aio.send_once` (asyncio):
which commands each round writes, what a failure on the way means, and which replies say "not run, send again".

A failure before anything that counts could have run is `NotSent` (the round is tried once more on a fresh
connection); a failure after is `ReplyLost`. Replies that say the command did not run are acted on and the command
sent again: NOSCRIPT (SCRIPT LOAD first), MOVED / ASK / TRYAGAIN / CLUSTERDOWN on Redis Cluster, READONLY after a
Sentinel or Cluster failover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, TypeAlias

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

from workq.scripts import Arg

ROUNDS = 16
"""Rounds one call may take while Redis answers "not run, try again" (redirects, TRYAGAIN, NOSCRIPT, READONLY)."""
BACKOFF = 0.05
BACKOFF_CAP = 0.5
"""Seconds before resending after TRYAGAIN or CLUSTERDOWN: doubling from BACKOFF, at most BACKOFF_CAP."""


class ScriptSource(Protocol):
    """What a script call needs of a script: its SHA, and its source for SCRIPT LOAD."""

    @property
    def sha(self) -> str: ...
    @property
    def source(self) -> str: ...


class ScriptCall(NamedTuple):
    """EVALSHA of `script`; its source is loaded when the server answers NOSCRIPT."""

    script: ScriptSource
    keys: Sequence[str]
    args: Sequence[Arg]


Command: TypeAlias = "tuple[Arg, ...] | ScriptCall"
"""A plain command, e.g. ("LPUSH", key, value), or a script call."""

Item: TypeAlias = "tuple[tuple[Arg, ...], bool]"
"""A command as written, and whether it counts (False: SCRIPT LOAD, ASKING, which may be repeated)."""


class ReplyLost(Exception):
    """Commands were written to Redis but their replies did not come back: each may or may not have run."""

    def __init__(self, server: str, cause: BaseException) -> None:
        super().__init__(f"Redis at {server} did not answer: {cause}")
        self.server = server
        self.cause = cause


class NotSent(Exception):
    """Nothing that may not be repeated reached Redis: `cause` is the fault met on the way."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass
class Actions:
    """What the driver does before the next write: tell a cluster client about moved slots, look the server up
    again (a failover, a failed connection), pause (TRYAGAIN, CLUSTERDOWN)."""

    moved: list[MovedError] = field(default_factory=list)
    refresh: bool = False
    delay: float = 0.0


class Rounds:
    """One call's progress: the items each round writes, and the replies kept so far."""

    def __init__(self, commands: Sequence[Command], *, cluster: bool, sentinel: bool) -> None:
        self._commands = commands
        self._cluster = cluster
        self._sentinel = sentinel
        self._replies: list[Any] = [None] * len(commands)
        self._pending = list(range(len(commands)))
        self._loads: dict[str, str] = {}
        self._actions = Actions()
        self._backoff = BACKOFF
        self._rounds_left = ROUNDS
        self._resent_unsent = False
        self.asking: AskError | None = None
        """The ASK redirect the next round follows (Redis Cluster), if any."""

    def next_round(self) -> tuple[list[Item], Actions] | None:
        """What the next round writes and what to do first; None when every command has its reply."""
        if not self._pending or self._rounds_left == 0:
            return None
        self._rounds_left -= 1
        items: list[Item] = [(("SCRIPT", "LOAD", source), False) for source in self._loads.values()]
        for index in self._pending:
            if self.asking is not None:
                items.append((("ASKING",), False))
            items.append((_written(self._commands[index]), True))
        actions, self._actions = self._actions, Actions()
        return items, actions

    @property
    def routed_by(self) -> Command:
        """The command whose first key picks the cluster node for this round."""
        return self._commands[self._pending[0]]

    def not_sent(self, unsent: NotSent) -> None:
        """The round failed before anything counted: it is tried once more, after looking the server up again;
        a second time raises the fault."""
        if self._resent_unsent:
            raise unsent.cause from None
        self._resent_unsent = True
        self._actions.refresh = True

    def answered(self, answers: list[Any]) -> None:
        """Keep a round's answers; commands whose replies said they did not run are sent in the next round."""
        resend: list[int] = []
        loads: dict[str, str] = {}
        asking: AskError | None = None
        for index, answer in zip(self._pending, answers, strict=True):
            self._replies[index] = answer
            if isinstance(answer, ResponseError):
                command = self._commands[index]
                if isinstance(answer, NoScriptError) and isinstance(command, ScriptCall):
                    loads[command.script.sha] = command.script.source
                    resend.append(index)
                elif self._cluster and isinstance(answer, AskError) and not isinstance(answer, MovedError):
                    asking = answer  # (redis-py's MovedError is an AskError: a MOVED corrects the slot map instead)
                    resend.append(index)
                elif self._not_run(answer):
                    resend.append(index)
        self._pending, self._loads, self.asking = resend, loads, asking

    def _not_run(self, refusal: ResponseError) -> bool:
        """True when `refusal` says the command did not run; records what to do before sending it again."""
        if self._cluster:
            if isinstance(refusal, MovedError):
                self._actions.moved.append(refusal)
                return True
            if isinstance(refusal, (TryAgainError, ClusterDownError)):
                self._actions.delay = self._backoff
                self._backoff = min(self._backoff * 2, BACKOFF_CAP)
                return True
        if isinstance(refusal, ReadOnlyError) and (self._cluster or self._sentinel):
            self._actions.refresh = True  # a failover demoted the server we reached
            return True
        return False

    def result(self, optional: int = 0) -> list[Any]:
        """The replies in order; raises the first error reply (one still refused after every round, too), except
        those of the last `optional` commands, returned as they are."""
        for reply in self._replies[: len(self._replies) - optional]:
            if isinstance(reply, ResponseError):
                raise reply
        return self._replies


def write_failed(items: Sequence[Item], position: int, server: str, exc: Exception) -> Exception:
    """What to raise when writing item `position` failed (the connection is dropped, and with it any partial
    command): `ReplyLost` if an item that counts went out before it, else `NotSent`."""
    if any(counts for _, counts in items[:position]):
        return ReplyLost(server, exc)
    return NotSent(exc)


def read_failed(items: Sequence[Item], position: int, server: str, exc: BaseException) -> Any:
    """The answer to keep when reading reply `position` failed (the connection is dropped): LOADING refusing the
    last item; anything else raises, a fault as `ReplyLost`."""
    if isinstance(exc, BusyLoadingError) and position == len(items) - 1:
        return exc  # the last command was refused; the others have answered
    if isinstance(exc, Exception):
        raise ReplyLost(server, exc) from exc
    raise exc


def _written(command: Command) -> tuple[Arg, ...]:
    if isinstance(command, ScriptCall):
        return ("EVALSHA", command.script.sha, len(command.keys), *command.keys, *command.args)
    return command


def first_key(command: Command) -> str | bytes:
    if isinstance(command, ScriptCall):
        return command.keys[0]
    key = command[1]
    return key if isinstance(key, (str, bytes)) else str(key)
