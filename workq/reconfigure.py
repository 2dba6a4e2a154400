"""Reconfiguring a pool or an enqueuer, for good (`configure`) or for a while (`configured`, the testing harness):
what it held before a `configured` block is put back exactly afterwards — the same client objects, not new ones
built from the same settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from workq.clock import Clock, ClockLike, as_clock
from workq.enqueue_commands import EnqueueCommands

ClientT = TypeVar("ClientT")


@contextmanager
def restored_afterwards(holder: object, *attributes: str) -> Iterator[None]:
    """Within the block `holder`'s `attributes` may change; after it they are as they were when it began."""
    saved = {name: getattr(holder, name) for name in attributes}
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(holder, name, value)


class ReconfigurableEnqueuer(Generic[ClientT]):
    """`configure`, `configured` and the `on_enqueued` hook of `Enqueuer` and `AsyncEnqueuer` (`ClientT`: the
    client they take); each builds what it holds in `_connect`."""

    namespace: str
    redis: ClientT
    _commands: EnqueueCommands
    _HELD: tuple[str, ...] = ("namespace", "redis", "keys", "_commands", "_once")
    """What `configured` puts back."""

    on_enqueued: Callable[[str], None] | None = None
    """Called with the job name after each enqueue that stored a job (`workq.testing` runs it there)."""

    def _connect(self, namespace: str, redis: ClientT | str | None, clock: Clock) -> None:
        raise NotImplementedError

    def configure(
        self, *, namespace: str | None = None, redis: ClientT | str | None = None, clock: ClockLike = None
    ) -> None:
        """Point this enqueuer at another namespace or Redis (a module-level enqueuer set up once the app knows
        its settings); `clock` replaces Redis's clock as the source of "now". Not while other tasks enqueue."""
        self._connect(
            self.namespace if namespace is None else namespace,
            self.redis if redis is None else redis,
            self._commands.clock if clock is None else as_clock(clock),
        )

    @contextmanager
    def configured(
        self, *, namespace: str | None = None, redis: ClientT | str | None = None, clock: ClockLike = None
    ) -> Iterator[None]:
        """`configure(...)` for the length of a `with` block, then exactly the settings (and client) before it."""
        with restored_afterwards(self, *self._HELD):
            self.configure(namespace=namespace, redis=redis, clock=clock)
            yield

    def _enqueued(self, name: str) -> None:
        if self.on_enqueued is not None:
            self.on_enqueued(name)
