"""A job name as one pool runs it: its composed chain, its options and every Redis key fetch and ack touch."""

from __future__ import annotations

from dataclasses import dataclass

from workq.handler import JobOptions
from workq.keys import Keys
from workq.middleware import AsyncJobChain, JobChain, is_async_chain


@dataclass(frozen=True)
class Registration:
    name: str
    chain: JobChain | AsyncJobChain
    """Run in a worker thread, or awaited on the pool's event loop when `on_loop`."""
    options: JobOptions
    queue_key: str
    in_progress_key: str
    lock_key: str
    lock_info_key: str
    leases_key: str

    @classmethod
    def build(
        cls, keys: Keys, pool_id: str, name: str, chain: JobChain | AsyncJobChain, options: JobOptions
    ) -> Registration:
        return cls(
            name=name,
            chain=chain,
            options=options,
            queue_key=keys.queue(name),
            in_progress_key=keys.in_progress(name, pool_id),
            lock_key=keys.lock(name),
            lock_info_key=keys.lock_info(name),
            leases_key=keys.leases(name),
        )

    @property
    def on_loop(self) -> bool:
        """Whether the chain's outer layer is async: its jobs are fetched and run by the async runner."""
        return is_async_chain(self.chain)

    def fetch_keys(self, keys: Keys) -> tuple[str, ...]:
        """The seven keys fetch.lua reads per job name, in its order."""
        return (
            self.queue_key,
            self.in_progress_key,
            keys.paused(self.name),
            self.lock_key,
            self.lock_info_key,
            keys.max_concurrency(self.name),
            self.leases_key,
        )

    def ack_keys(self, keys: Keys, at: float) -> list[str]:
        """The five keys ack.lua always takes, in its order (the destination and a unique lock may follow)."""
        return [self.in_progress_key, self.lock_key, self.lock_info_key, self.leases_key, keys.stats(self.name, at)]
