"""The geometric mechanism's distribution, suppression and one release per day."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from healthledger.apps.epidemic.disclosure import (
    PublicStatistics,
    all_cells,
    geometric_noise,
    geometric_pmf,
    noisy_release,
)
from healthledger.apps.epidemic.releases import ChainReleases, Spent
from healthledger.contracts.errors import AccessDenied, InvalidArguments, Rejected
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.conftest import CONTRACTS
from tests.apps.epidemic.support import today
from tests.support.seam import epidemic_seam

DRAWS = 40_000
EPI = "gd-cdc/epi-wang"


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


def test_every_cell_is_released_so_its_presence_tells_nothing() -> None:
    cells = all_cells({("440100", "influenza"): 3, ("440300", "measles"): 1}, ["440100", "440300"])
    assert cells == {
        ("440100", "influenza"): 3,
        ("440100", "measles"): 0,
        ("440300", "influenza"): 0,
        ("440300", "measles"): 1,
    }


def test_one_release_per_day_kept_on_chain_so_a_restart_spends_nothing_more(
    node: EmbeddedNode,
) -> None:
    asked = []

    def counts() -> dict[tuple[str, str], int]:
        asked.append(1)
        return {("440100", "influenza"): 300, ("440300", "influenza"): 2}

    day = today(node)
    releases = ChainReleases(epidemic_seam(node), EPI)
    stats = PublicStatistics(releases, random.Random(9))
    first = stats.release(day, counts, {"440100": "Guangzhou"})
    assert all(stats.release(day, counts, {}) is first for _ in range(20))
    assert len(asked) == 1
    assert first.recorded_by == "gd-cdc"
    assert releases.spent() == Spent(releases=1, epsilon=0.5)

    data = node.data_dir
    node.stop()
    reopened = EmbeddedNode(data, contracts=CONTRACTS, batch_timeout_s=0.005).start()
    try:
        again = PublicStatistics(ChainReleases(epidemic_seam(reopened), EPI), random.Random(10))
        served = again.release(day, counts, {"440100": "Guangzhou"})
        assert served.rows == first.rows and len(asked) == 1  # no new noise, no new ε
        assert ChainReleases(epidemic_seam(reopened), EPI).spent() == Spent(releases=1, epsilon=0.5)
        assert again.release(day - 1, counts, {}).day == day - 1
        assert len(asked) == 2
        assert ChainReleases(epidemic_seam(reopened), EPI).spent() == Spent(releases=2, epsilon=1.0)
    finally:
        reopened.stop()


def test_a_node_that_cannot_publish_serves_only_what_is_on_chain(node: EmbeddedNode) -> None:
    """A node without a CDC's key never draws noise of its own: a client could average
    its draw with the recorded one. It serves the latest recorded release, or none."""
    asked = []

    def counts() -> dict[tuple[str, str], int]:
        asked.append(1)
        return {("440100", "influenza"): 300}

    day = today(node)
    reader = PublicStatistics(ChainReleases(epidemic_seam(node), None), random.Random(3))
    assert reader.release(day - 1, counts, {}) is None
    assert asked == []
    published = PublicStatistics(ChainReleases(epidemic_seam(node), EPI), random.Random(4))
    recorded = published.release(day - 1, counts, {"440100": "Guangzhou"})
    assert recorded is not None and len(asked) == 1
    # The same release as recorded, for its day and (until today's is recorded) today.
    for asked_day in (day - 1, day):
        served = reader.release(asked_day, counts, {"440100": "Guangzhou"})
        assert served is not None and served.day == day - 1 and served.rows == recorded.rows
    assert len(asked) == 1
    todays = published.release(day, counts, {})
    assert todays is not None
    served_today = reader.release(day, counts, {})
    assert served_today is not None and served_today.day == day and served_today.rows == todays.rows
    assert len(asked) == 2


def test_only_a_cdc_records_a_release_and_only_once(node: EmbeddedNode) -> None:
    args = {
        "day": today(node),
        "epsilon_milli": 500,
        "suppress_below": 10,
        "mechanism": "two-sided geometric",
        "rows": [{"region": "440100", "disease": "influenza", "count": 12}],
    }
    with pytest.raises(AccessDenied):
        node.invoke("gz-first-hospital/dr-li", "epidemic", "record_release", args)
    with pytest.raises(InvalidArguments, match=r"rows\[0\].count"):
        bad = {**args, "rows": [{"region": "440100", "disease": "influenza", "count": 3}]}
        node.invoke(EPI, "epidemic", "record_release", bad)
    with pytest.raises(InvalidArguments, match="day: in the future"):
        node.invoke(EPI, "epidemic", "record_release", {**args, "day": today(node) + 1})
    node.invoke(EPI, "epidemic", "record_release", args)
    with pytest.raises(Rejected, match="already recorded"):
        node.invoke(EPI, "epidemic", "record_release", args)
