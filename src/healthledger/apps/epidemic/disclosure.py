"""Public statistics under differential privacy: case counts per city and disease
released with two-sided geometric noise (the discrete Laplace mechanism), small
released counts suppressed.

Why our own mechanism: no maintained DP library (OpenDP, diffprivlib) is installed and
the project adds no dependency for it; the two-sided geometric mechanism is a few lines,
works on integers (no floating-point Laplace, whose low bits leak: Mironov, CCS 2012),
and its distribution is tested (tests/apps/epidemic/test_disclosure.py).

Privacy unit and budget: one case report. The cells of a release (every city x every
disease reported anywhere in the province, zero counts included, so that a cell's
presence tells nothing) are disjoint, so a report changes one cell by one
(sensitivity 1) and a release costs ``EPSILON`` by parallel composition. Suppression
acts on the noisy count, so it is post-processing and costs nothing. A release is made
once per day, recorded on chain (``epidemic.record_release``: the published noisy
counts and ε, suppressed cells without a count) and then served as recorded, so that
asking again, restarting the node or asking another peer cannot average the noise
away: the budget spent is ``EPSILON`` per day for the whole consortium, and the total
spent is the sum over the releases on chain.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

EPSILON = 0.5
"""Privacy loss of one daily release."""
MECHANISM = "two-sided geometric (discrete Laplace), sensitivity 1"
SUPPRESS_BELOW = 10
"""Released (noisy) counts below this are shown as suppressed."""


def geometric_noise(epsilon: float, rng: random.Random) -> int:
    """A draw of the two-sided geometric distribution P(k) proportional to exp(-epsilon
    |k|): the difference of two geometric variables with success probability
    1 - exp(-epsilon), each drawn by inversion."""
    if epsilon <= 0:
        raise ValueError("epsilon must be positive")
    alpha = math.exp(-epsilon)
    log_alpha = math.log(alpha)

    def failures() -> int:
        return math.floor(math.log(1.0 - rng.random()) / log_alpha)

    return failures() - failures()


def geometric_pmf(k: int, epsilon: float) -> float:
    """P(noise = k) of :func:`geometric_noise`."""
    alpha = math.exp(-epsilon)
    return (1 - alpha) / (1 + alpha) * alpha ** abs(k)


@dataclass(frozen=True)
class Release:
    """One day's public statistics."""

    day: int
    epsilon: float
    suppress_below: int
    rows: tuple[dict[str, Any], ...]
    """{region, name, disease, count | None (suppressed)}"""
    recorded_by: str | None = None
    """The organisation that recorded it on chain, None while it is not recorded."""

    def to_json(self) -> dict[str, Any]:
        """The release as served (counts only; nothing about the true values)."""
        return {
            "day": self.day,
            "epsilon": self.epsilon,
            "mechanism": MECHANISM,
            "suppress_below": self.suppress_below,
            "recorded_by": self.recorded_by,
            "rows": [dict(r) for r in self.rows],
        }


def all_cells(
    counts: Mapping[tuple[str, str], int], regions: Iterable[str]
) -> dict[tuple[str, str], int]:
    """``counts`` with a zero for every (region, disease) cell not in it: every region
    crossed with every disease that has a count anywhere."""
    diseases = {disease for _, disease in counts}
    full = {(region, disease): 0 for region in regions for disease in diseases}
    full.update(counts)
    return full


def noisy_release(
    true_counts: Mapping[tuple[str, str], int],
    names: Mapping[str, str],
    *,
    day: int,
    rng: random.Random,
    epsilon: float = EPSILON,
    suppress_below: int = SUPPRESS_BELOW,
) -> Release:
    """Noise every (region, disease) count, clamp at zero, suppress small ones."""
    rows = []
    for (region, disease), count in sorted(true_counts.items()):
        noisy = max(0, count + geometric_noise(epsilon, rng))
        rows.append(
            {
                "region": region,
                "name": names.get(region, region),
                "disease": disease,
                "count": noisy if noisy >= suppress_below else None,
            }
        )
    return Release(day, epsilon, suppress_below, tuple(rows))


class ReleaseRecord(Protocol):
    """Where releases are kept (the chain: releases.ChainReleases)."""

    @property
    def publishes(self) -> bool:
        """True if this node may record a release (it holds a CDC's key)."""
        ...

    def load(self, day: int, names: Mapping[str, str]) -> Release | None:
        """The release of ``day``, if one was recorded."""
        ...

    def latest(self, day: int, names: Mapping[str, str]) -> Release | None:
        """The most recent release recorded on or before ``day``, if any."""
        ...

    def save(self, release: Release) -> Release:
        """Record ``release``; the release that stands for its day (an earlier one
        recorded by someone else wins)."""
        ...


class PublicStatistics:
    """Makes at most one release per day, keeps it in ``record`` and serves it unchanged.

    Only a node that publishes (holds a CDC's key) ever draws noise, and it records the
    release before serving it; any other node serves the latest release on chain and
    never a draw of its own, which a client could average with the recorded one."""

    def __init__(self, record: ReleaseRecord, rng: random.Random | None = None) -> None:
        self._record = record
        self._rng = rng or random.SystemRandom()
        self._lock = threading.Lock()
        self._release: Release | None = None

    def served(self, day: int, names: Mapping[str, str]) -> Release | None:
        """What the public pages serve on ``day``: the latest release recorded on chain
        on or before it (never a draw of this node's own, and nothing is written)."""
        with self._lock:
            if self._release is not None and self._release.day == day:
                return self._release
        return self._record.latest(day, names)

    def release(
        self,
        day: int,
        counts: Callable[[], Mapping[tuple[str, str], int]],
        names: Mapping[str, str],
    ) -> Release | None:
        """Today's release: the one recorded for ``day``, else (on a publishing node) one
        made from ``counts()`` and recorded now, else the latest one recorded before;
        None if no release was ever recorded and this node does not publish."""
        with self._lock:
            if self._release is not None and self._release.day == day:
                return self._release
            recorded = self._record.load(day, names)
            if recorded is None and self._record.publishes:
                made = noisy_release(counts(), names, day=day, rng=self._rng)
                recorded = self._record.save(made)
            if recorded is not None:
                self._release = recorded
                return recorded
            # Not cached: the day's release may be recorded by a CDC's node at any time.
            return self._record.latest(day, names)
