"""Order in which a pool tries its job names: higher priority first more often, no name ever starved."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class PrioritySampler(Generic[T]):
    """Draws weighted random permutations: an item of priority p comes first with probability p / Σp."""

    def __init__(self, weighted: Sequence[tuple[T, int]], rng: random.Random | None = None) -> None:
        if not weighted:
            raise ValueError("a priority sampler needs at least one item")
        self._items = [item for item, _ in weighted]
        self._weights = [weight for _, weight in weighted]
        self._rng = rng if rng is not None else random.Random()

    @property
    def items(self) -> Sequence[T]:
        """Every item, in the order given."""
        return self._items

    def sample(self) -> list[T]:
        if len(self._items) == 1:
            return list(self._items)
        items = list(self._items)
        weights = list(self._weights)
        remaining = sum(weights)
        order: list[T] = []
        while items:
            point = self._rng.random() * remaining
            index = 0
            while index < len(weights) - 1 and point >= weights[index]:
                point -= weights[index]
                index += 1
            order.append(items.pop(index))
            remaining -= weights.pop(index)
        return order
