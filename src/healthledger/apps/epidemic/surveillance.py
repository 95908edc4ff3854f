"""Surveillance statistics over daily case counts: the reproduction number Rt by the
Cori method, doubling time, and the EARS C1-C3 early-warning statistics.

Pure functions over lists of daily counts (index = day); floats live here and in
the dashboards only, never in state. References: Cori et al., Am J Epidemiol 2013
(EpiEstim); Hutwagner et al., J Urban Health 2003 (EARS C1-C3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SERIAL_INTERVAL_MEAN = 2.6
"""Days; influenza's serial interval (Cowling et al., Epidemiology 2009)."""
SERIAL_INTERVAL_SD = 1.5
SERIAL_INTERVAL_MAX = 14
RT_WINDOW = 7
"""Days in each sliding window of the Cori estimate."""
RT_PRIOR_MEAN = 5.0
RT_PRIOR_SD = 5.0
"""EpiEstim's default gamma prior on Rt (mean 5, sd 5: shape 1, scale 5)."""
RT_MIN_CASES = 12
"""Windows with fewer cases give no estimate (EpiEstim's advice: at least 12)."""

EARS_THRESHOLDS = {"C1": 3.0, "C2": 3.0, "C3": 2.0}
EARS_SD_FLOOR = 0.5
"""A floor on the baseline's standard deviation, so that a run of zero days does not
make every single case an alert."""
EARS_MIN_COUNT = 3
"""No alert on a day with fewer cases than this."""


@dataclass(frozen=True)
class RtEstimate:
    """Rt over the window ending on ``day`` with its 95 % credible interval."""

    day: int
    mean: float
    lower: float
    upper: float
    cases: int
    """Cases in the window."""


@dataclass(frozen=True)
class DoublingTime:
    """Doubling time (days) from a log-linear fit, with a 95 % confidence interval;
    ``days`` is None when the counts are not growing."""

    days: float | None
    lower: float | None
    upper: float | None
    growth_rate: float
    """Per day."""


@dataclass(frozen=True)
class EarsFlag:
    """An EARS alert on ``day``: the methods whose statistic passed its threshold."""

    day: int
    count: int
    baseline: float
    """C1's baseline mean (the previous seven days)."""
    methods: tuple[str, ...]
    statistics: dict[str, float]


def gamma_cdf(x: float, shape: float, scale: float = 1.0) -> float:
    """P(X <= x) for a gamma(shape, scale) variable (regularised lower incomplete gamma:
    series below shape + 1, Lentz's continued fraction above)."""
    if x <= 0:
        return 0.0
    z = x / scale
    log_front = shape * math.log(z) - z - math.lgamma(shape)
    if z < shape + 1:
        term = total = 1.0 / shape
        n = shape
        for _ in range(1000):
            n += 1
            term *= z / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return min(1.0, total * math.exp(log_front))
    tiny = 1e-300
    b = z + 1 - shape
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - shape)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return max(0.0, 1.0 - math.exp(log_front) * h)


def gamma_quantile(p: float, shape: float, scale: float = 1.0) -> float:
    """The ``p`` quantile of gamma(shape, scale), by bisection on :func:`gamma_cdf`."""
    if not 0 < p < 1:
        raise ValueError("p must lie strictly between 0 and 1")
    low, high = 0.0, max(1.0, shape) * scale
    while gamma_cdf(high, shape, scale) < p:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        if gamma_cdf(mid, shape, scale) < p:
            low = mid
        else:
            high = mid
        if high - low <= 1e-12 * max(1.0, high):
            break
    return (low + high) / 2


def serial_interval(
    mean: float = SERIAL_INTERVAL_MEAN,
    sd: float = SERIAL_INTERVAL_SD,
    max_days: int = SERIAL_INTERVAL_MAX,
) -> list[float]:
    """Daily weights w[k-1] for k = 1..max_days of a gamma serial interval: the mass of
    (k - 0.5, k + 0.5], renormalised (a serial interval is at least one day)."""
    shape, scale = (mean / sd) ** 2, sd * sd / mean
    weights = [
        gamma_cdf(k + 0.5, shape, scale) - gamma_cdf(k - 0.5, shape, scale)
        for k in range(1, max_days + 1)
    ]
    total = sum(weights)
    return [w / total for w in weights]


def cori_rt(
    incidence: Sequence[int],
    weights: Sequence[float],
    *,
    window: int = RT_WINDOW,
    prior_mean: float = RT_PRIOR_MEAN,
    prior_sd: float = RT_PRIOR_SD,
    min_cases: int = RT_MIN_CASES,
    first_day: int = 0,
) -> list[RtEstimate]:
    """Cori's estimate of Rt over sliding windows of ``window`` days.

    With total infectiousness L_s = sum_k w_k I_(s-k), the posterior of Rt over the
    window (t - window, t] is gamma with shape a + sum I_s and rate 1/b + sum L_s,
    where a, b are the prior's shape and scale. ``incidence[i]`` is day
    ``first_day + i``; the first day only seeds infectiousness."""
    prior_shape = (prior_mean / prior_sd) ** 2
    prior_scale = prior_sd * prior_sd / prior_mean
    infectiousness = [
        sum(weights[k - 1] * incidence[s - k] for k in range(1, min(s, len(weights)) + 1))
        for s in range(len(incidence))
    ]
    estimates = []
    for t in range(max(1, window), len(incidence)):
        days = range(max(1, t - window + 1), t + 1)
        cases = sum(incidence[s] for s in days)
        load = sum(infectiousness[s] for s in days)
        if cases < min_cases or load <= 0:
            continue
        shape = prior_shape + cases
        scale = 1 / (1 / prior_scale + load)
        estimates.append(
            RtEstimate(
                day=first_day + t,
                mean=shape * scale,
                lower=gamma_quantile(0.025, shape, scale),
                upper=gamma_quantile(0.975, shape, scale),
                cases=cases,
            )
        )
    return estimates


def doubling_time(incidence: Sequence[int], *, window: int = 14) -> DoublingTime | None:
    """Doubling time from an least-squares fit of log counts over the last ``window``
    days (days without cases left out); None with fewer than five such days."""
    recent = list(incidence[-window:])
    points = [(float(day), math.log(n)) for day, n in enumerate(recent) if n > 0]
    if len(points) < 5:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx
    residual = sum((y - mean_y - slope * (x - mean_x)) ** 2 for x, y in points)
    se = math.sqrt(residual / (len(points) - 2) / sxx)
    low_rate, high_rate = slope - 1.96 * se, slope + 1.96 * se

    def days_for(rate: float) -> float | None:
        return math.log(2) / rate if rate > 0 else None

    return DoublingTime(
        days=days_for(slope),
        lower=days_for(high_rate),
        upper=days_for(low_rate),
        growth_rate=slope,
    )


def _mean_sd(values: Sequence[int]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance)


def ears(counts: Sequence[int], *, first_day: int = 0) -> list[EarsFlag]:
    """EARS C1, C2 and C3 over daily ``counts``: C1 compares a day with the seven days
    before it, C2 with the seven days before a two-day guard band, C3 sums the last
    three days' C2 excesses over 1. An alert needs at least EARS_MIN_COUNT cases."""
    c2: dict[int, float] = {}
    flags = []
    for t in range(len(counts)):
        stats: dict[str, float] = {}
        if t >= 7:
            mean1, sd1 = _mean_sd(counts[t - 7 : t])
            stats["C1"] = (counts[t] - mean1) / max(sd1, EARS_SD_FLOOR)
        if t >= 9:
            mean2, sd2 = _mean_sd(counts[t - 9 : t - 2])
            c2[t] = stats["C2"] = (counts[t] - mean2) / max(sd2, EARS_SD_FLOOR)
        if all(s in c2 for s in (t, t - 1, t - 2)):
            stats["C3"] = sum(max(0.0, c2[s] - 1) for s in (t, t - 1, t - 2))
        methods = tuple(m for m, v in stats.items() if v > EARS_THRESHOLDS[m])
        if methods and counts[t] >= EARS_MIN_COUNT:
            baseline = sum(counts[t - 7 : t]) / 7
            flags.append(EarsFlag(first_day + t, counts[t], baseline, methods, stats))
    return flags
