"""The geometric mechanism's distribution, suppression and one release per day."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from healthledger.apps.epidemic.disclosure import (
    PublicStatistics,
    geometric_noise,
    geometric_pmf,
    noisy_release,
)

DRAWS = 40_000


@pytest.mark.parametrize("epsilon", [0.5, 1.0, 2.0])
def test_noise_follows_the_two_sided_geometric_distribution(epsilon: float) -> None:
    rng = random.Random(1234)
    draws = [geometric_noise(epsilon, rng) for _ in range(DRAWS)]
    seen = Counter(draws)
    alpha = math.exp(-epsilon)
    # Mean 0, variance 2 alpha / (1 - alpha)^2, within five standard errors.
    variance = 2 * alpha / (1 - alpha) ** 2
    assert abs(sum(draws) / DRAWS) < 5 * math.sqrt(variance / DRAWS)
    empirical = sum(d * d for d in draws) / DRAWS
    assert empirical == pytest.approx(variance, rel=0.08)
    # Chi-square over the central values (and the two tails) against the pmf.
    cells = range(-4, 5)
    expected = {k: DRAWS * geometric_pmf(k, epsilon) for k in cells}
    tail = (DRAWS - sum(expected.values())) / 2
    observed_low = sum(n for k, n in seen.items() if k < -4)
    observed_high = sum(n for k, n in seen.items() if k > 4)
    chi2 = sum((seen[k] - expected[k]) ** 2 / expected[k] for k in cells)
    chi2 += (observed_low - tail) ** 2 / tail + (observed_high - tail) ** 2 / tail
    assert chi2 < 27.9  # chi-square, 10 degrees of freedom, p = 0.002


def test_the_pmf_sums_to_one_and_neighbours_differ_by_e_to_the_epsilon() -> None:
    assert sum(geometric_pmf(k, 0.7) for k in range(-200, 201)) == pytest.approx(1.0)
    for k in range(0, 6):
        assert geometric_pmf(k, 0.7) / geometric_pmf(k + 1, 0.7) == pytest.approx(math.exp(0.7))


def test_epsilon_must_be_positive() -> None:
    with pytest.raises(ValueError):
        geometric_noise(0.0, random.Random(1))


def test_release_suppresses_small_noisy_counts_and_never_goes_negative() -> None:
    counts = {("440100", "influenza"): 500, ("440300", "influenza"): 1, ("440400", "measles"): 0}
    release = noisy_release(counts, {"440100": "Guangzhou"}, day=5, rng=random.Random(3))
    rows = {(r["region"], r["disease"]): r for r in release.rows}
    big = rows[("440100", "influenza")]
    assert big["name"] == "Guangzhou" and abs(big["count"] - 500) < 40
    assert rows[("440300", "influenza")]["count"] is None
    assert rows[("440400", "measles")]["count"] is None
    assert release.to_json()["epsilon"] == 0.5


def test_one_release_per_day_so_noise_cannot_be_averaged_away() -> None:
    stats = PublicStatistics(random.Random(9))
    asked = []

    def counts() -> dict[tuple[str, str], int]:
        asked.append(1)
        return {("440100", "influenza"): 300}

    first = stats.release(10, counts, {})
    assert all(stats.release(10, counts, {}) is first for _ in range(20))
    assert len(asked) == 1
    assert stats.release(11, counts, {}) is not first
    assert len(asked) == 2
