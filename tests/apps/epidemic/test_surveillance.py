"""Rt (Cori), doubling time and EARS against cases worked out by hand; the nowcast's
delay distribution against right-truncated reports with a known delay."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from healthledger.apps.epidemic.surveillance import (
    SERIAL_INTERVAL_MEAN,
    cori_rt,
    delay_distribution,
    doubling_time,
    ears,
    gamma_cdf,
    gamma_quantile,
    nowcast,
    serial_interval,
)


@pytest.mark.parametrize("x", [0.1, 1.0, 2.5, 7.0, 30.0])
def test_gamma_cdf_matches_closed_forms(x: float) -> None:
    assert gamma_cdf(x, 1.0) == pytest.approx(1 - math.exp(-x), rel=1e-12)  # exponential
    assert gamma_cdf(x, 2.0) == pytest.approx(1 - math.exp(-x) * (1 + x), rel=1e-10)
    assert gamma_cdf(2 * x, 3.0, 2.0) == pytest.approx(
        1 - math.exp(-x) * (1 + x + x * x / 2), rel=1e-10
    )


def test_gamma_quantile_inverts_the_cdf() -> None:
    assert gamma_quantile(0.5, 1.0, 2.0) == pytest.approx(2 * math.log(2), rel=1e-9)
    for p in (0.025, 0.5, 0.975):
        assert gamma_cdf(gamma_quantile(p, 5.0, 0.4), 5.0, 0.4) == pytest.approx(p, abs=1e-9)
    with pytest.raises(ValueError):
        gamma_quantile(1.0, 1.0)


def test_serial_interval_weights_sum_to_one_with_the_stated_mean() -> None:
    weights = serial_interval()
    assert sum(weights) == pytest.approx(1.0)
    mean = sum(k * w for k, w in enumerate(weights, start=1))
    assert abs(mean - SERIAL_INTERVAL_MEAN) < 0.15  # discretised onto whole days


def test_cori_by_hand() -> None:
    # Serial interval of exactly one day, one-day windows, prior shape 1 and scale 5:
    # day 1: posterior shape 1 + 4 = 5, rate 1/5 + 2 = 2.2 -> mean 5 / 2.2.
    # day 2: shape 1 + 8 = 9, rate 1/5 + 4 = 4.2 -> mean 9 / 4.2.
    estimates = cori_rt([2, 4, 8], [1.0], window=1, min_cases=0, first_day=100)
    assert [e.day for e in estimates] == [101, 102]
    assert estimates[0].mean == pytest.approx(5 / 2.2)
    assert estimates[1].mean == pytest.approx(9 / 4.2)
    first = estimates[0]
    assert gamma_cdf(first.lower, 5, 1 / 2.2) == pytest.approx(0.025, abs=1e-9)
    assert gamma_cdf(first.upper, 5, 1 / 2.2) == pytest.approx(0.975, abs=1e-9)


def test_cori_two_day_window_and_two_day_serial_interval() -> None:
    # w = (0.5, 0.5); incidence 10, 10, 20, 20: L2 = 0.5*10 + 0.5*10 = 10, L3 = 0.5*20 +
    # 0.5*10 = 15; window (2, 3]: shape 1 + 40 = 41, rate 0.2 + 25 -> mean 41 / 25.2.
    estimates = cori_rt([10, 10, 20, 20], [0.5, 0.5], window=2, min_cases=0)
    assert estimates[-1].day == 3
    assert estimates[-1].mean == pytest.approx(41 / 25.2)
    assert estimates[-1].lower < estimates[-1].mean < estimates[-1].upper


def test_cori_needs_enough_cases() -> None:
    assert cori_rt([1, 1, 1, 1, 1, 1, 1, 1], serial_interval()) == []


def test_constant_incidence_gives_rt_near_one() -> None:
    estimates = cori_rt([50] * 40, serial_interval())
    assert estimates[-1].mean == pytest.approx(1.0, abs=0.02)


def test_doubling_time_of_an_exact_exponential() -> None:
    incidence = [round(100 * 2 ** (t / 4)) for t in range(14)]
    found = doubling_time(incidence)
    assert found is not None and found.days is not None
    assert found.days == pytest.approx(4.0, abs=0.05)
    assert found.lower is not None and found.upper is not None
    assert found.lower <= found.days <= found.upper


def test_no_doubling_when_falling_or_too_sparse() -> None:
    falling = doubling_time([100 - 5 * t for t in range(14)])
    assert falling is not None and falling.days is None and falling.growth_rate < 0
    assert doubling_time([0, 0, 1, 0, 2, 0, 0]) is None


def test_ears_by_hand() -> None:
    # Baseline 1, 2, 1, 2, 1, 2, 1 (mean 10/7, sd 0.535...); 6 cases on day 7:
    # C1 = (6 - 10/7) / 0.5345 = 8.55 > 3.
    counts = [1, 2, 1, 2, 1, 2, 1, 6]
    flags = ears(counts, first_day=10)
    assert [f.day for f in flags] == [17]
    sd = math.sqrt(sum((c - 10 / 7) ** 2 for c in counts[:7]) / 6)
    assert flags[0].statistics["C1"] == pytest.approx((6 - 10 / 7) / sd)
    assert flags[0].methods == ("C1",)  # too early for C2 (needs nine days)
    assert flags[0].baseline == pytest.approx(10 / 7)


def test_ears_c2_and_c3_need_their_history_and_small_days_never_alert() -> None:
    quiet = [0] * 12
    assert ears(quiet) == []
    assert ears([*quiet, 2]) == []  # below the minimum count
    flags = ears([*quiet, 3, 4, 5])
    assert flags[0].methods == ("C1", "C2", "C3")
    assert flags[0].statistics["C2"] == pytest.approx(3 / 0.5)
    assert flags[-1].statistics["C3"] > 2


def _truncated_reports(
    seed: int,
) -> tuple[list[tuple[int, int]], list[int], list[int], list[float]]:
    """200 onsets a day over 60 days, delays with P(d) proportional to 0.6^d (d <= 14),
    seen on day 59 only if diagnosed by then: (pairs seen, true counts, seen counts,
    true F)."""
    rng = random.Random(seed)
    weights = [0.6**d for d in range(15)]
    total = sum(weights)
    true_cdf = [sum(weights[: d + 1]) / total for d in range(15)]
    pairs: Counter[tuple[int, int]] = Counter()
    true_counts, seen_counts = [], []
    for day in range(60):
        delays = rng.choices(range(15), weights=weights, k=200)
        seen = [d for d in delays if day + d <= 59]
        pairs.update((day, d) for d in seen)
        true_counts.append(200)
        seen_counts.append(len(seen))
    return pairs, true_counts, seen_counts, true_cdf


def test_the_delay_distribution_is_recovered_from_right_truncated_reports() -> None:
    pairs, _, _, true_cdf = _truncated_reports(5)
    estimated = delay_distribution(pairs, today=59)
    assert estimated is not None
    assert max(abs(e - t) for e, t in zip(estimated, true_cdf, strict=True)) < 0.02
    # The plain histogram of what was seen is biased towards short delays.
    seen = sum(pairs.values())
    naive = [sum(n for (_, d), n in pairs.items() if d <= k) / seen for k in range(15)]
    assert naive[0] - true_cdf[0] > 0.004
    assert delay_distribution(Counter({(50, 1): 10}), today=59) is None  # too few


def test_the_nowcast_restores_the_recent_days() -> None:
    pairs, true_counts, seen_counts, _ = _truncated_reports(6)
    cdf = delay_distribution(pairs, today=59)
    assert cdf is not None
    result = nowcast(seen_counts, cdf, first_day=0, today=59)
    assert result.counts[:45] == seen_counts[:45]  # complete days are left alone
    assert seen_counts[59] < 100 and not result.corrected[59]  # today: too incomplete
    assert seen_counts[58] < 170 and result.corrected[58]
    for day in range(45, 60):
        if result.corrected[day]:
            assert abs(result.counts[day] - true_counts[day]) < 25
        else:
            assert result.completeness[day] < 0.5 or result.completeness[day] == 1.0
