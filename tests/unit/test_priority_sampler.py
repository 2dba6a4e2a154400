"""PrioritySampler: weighted random permutations, p / Σp first, no name starved."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from workq.priority_sampler import PrioritySampler


def first_counts(weighted: list[tuple[str, int]], samples: int, seed: int) -> Counter[str]:
    sampler = PrioritySampler(weighted, random.Random(seed))
    return Counter(sampler.sample()[0] for _ in range(samples))


def within_five_sigma(count: int, samples: int, probability: float) -> bool:
    sigma = math.sqrt(samples * probability * (1 - probability))
    return abs(count - samples * probability) <= 5 * sigma


def test_each_sample_is_a_permutation_of_all_items() -> None:
    weighted = [("a", 1), ("b", 5), ("c", 100), ("d", 100000), ("e", 1)]
    sampler = PrioritySampler(weighted, random.Random(1))
    for _ in range(1000):
        assert sorted(sampler.sample()) == ["a", "b", "c", "d", "e"]


def test_a_single_item_is_always_the_sample() -> None:
    assert PrioritySampler([("only", 7)], random.Random(1)).sample() == ["only"]


def test_an_empty_sampler_is_refused() -> None:
    with pytest.raises(ValueError):
        PrioritySampler([])


def test_first_place_is_proportional_to_priority() -> None:
    # 20,000 draws: σ = √(n·p·(1-p)) ≈ 61 for p = 0.25, so ±5σ is ±306 (about ±1.5 points).
    # An unweighted sampler (50 %) or a reversed one (75 %) is more than 80σ away.
    samples = 20_000
    counts = first_counts([("low", 1), ("high", 3)], samples, seed=2024)
    assert within_five_sigma(counts["low"], samples, 0.25)
    assert within_five_sigma(counts["high"], samples, 0.75)


def test_first_place_is_proportional_among_three_items() -> None:
    samples = 20_000
    counts = first_counts([("a", 1), ("b", 2), ("c", 7)], samples, seed=7)
    for name, probability in (("a", 0.1), ("b", 0.2), ("c", 0.7)):
        assert within_five_sigma(counts[name], samples, probability), (name, counts)


def test_later_places_follow_the_remaining_weights() -> None:
    # Given "c" (weight 7) came first, "b" comes second with probability 2 / (1 + 2).
    sampler = PrioritySampler([("a", 1), ("b", 2), ("c", 7)], random.Random(11))
    seconds = Counter(order[1] for order in (sampler.sample() for _ in range(20_000)) if order[0] == "c")
    total = sum(seconds.values())
    assert within_five_sigma(seconds["b"], total, 2 / 3)


def test_lowest_priority_is_not_starved_by_the_highest() -> None:
    # P(rare first) = 1/100001, so 600,000 draws expect 6 (P(0) = e⁻⁶ ≈ 0.25 %; P(≥ 20) ≈ 10⁻⁵).
    # A sampler that starves the rare item gives 0; one that ignores weights gives ~300,000.
    counts = first_counts([("rare", 1), ("common", 100_000)], 600_000, seed=3)
    assert 1 <= counts["rare"] <= 20


def test_the_same_seed_gives_the_same_orders() -> None:
    weighted = [("a", 1), ("b", 2), ("c", 3)]
    first = PrioritySampler(weighted, random.Random(5))
    second = PrioritySampler(weighted, random.Random(5))
    assert [first.sample() for _ in range(50)] == [second.sample() for _ in range(50)]
