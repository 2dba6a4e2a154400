"""The Lua scripts, one per atomic operation, registered on a client (EVALSHA with a NOSCRIPT fallback)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from redis.commands.core import Script

from workq.connection import RedisClient


def _source(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.lua").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Scripts:
    enqueue: Script
    fetch: Script
    ack: Script
    requeue: Script
    enqueue_unique: Script
    periodic_enqueue: Script
    reap: Script
    expire_leases: Script
    extend_lease: Script
    release_lock: Script

    @classmethod
    def register(cls, client: RedisClient) -> Scripts:
        return cls(**{name: client.register_script(_source(name)) for name in cls.__dataclass_fields__})
