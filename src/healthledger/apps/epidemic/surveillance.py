"""Surveillance statistics over daily case counts: the reproduction number Rt by the
Cori method, doubling time, the EARS C1-C3 early-warning statistics, and a nowcast
that corrects the most recent days for cases not yet diagnosed.

Pure functions over lists of daily counts (index = day); floats live here and in
the dashboards only, never in state. References: Cori et al., Am J Epidemiol 2013
(EpiEstim); Hutwagner et al., J Urban Health 2003 (EARS C1-C3); Lagakos, Barraj and
De Gruttola, Biometrika 1988, and Kalbfleisch and Lawless, Stat Med 1991 (delay
distributions from right-truncated data).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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

NOWCAST_MAX_DELAY = 14
"""Onset-to-diagnosis delays longer than this are left out of the delay distribution."""
NOWCAST_MIN_CASES = 30
"""Fewer usable (onset, delay) pairs than this give no delay distribution."""
NOWCAST_MIN_COMPLETENESS = 0.5
"""Days expected to be less complete than this are not corrected (too uncertain)."""


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


def delay_distribution(
    counts: Mapping[tuple[int, int], int], *, today: int, max_delay: int = NOWCAST_MAX_DELAY
) -> list[float] | None:
    """F(d) = P(delay <= d | delay <= max_delay) for d = 0..max_delay, from the number of
    cases per (onset day, onset-to-diagnosis delay) seen up to ``today``; None with
    too few cases.

    The data are right-truncated: a case with onset s is seen only once its delay is at
    most today - s, so recent onsets show only short delays and a plain histogram is
    biased towards them. The reverse-time hazard h(d) = P(D = d | D <= d) is estimated
    without that bias from the cases that could have shown delay d (D <= d and
    today - s >= d), and F(d - 1) = F(d) (1 - h(d)) from F(max_delay) = 1."""
    usable = {
        (onset, delay): n
        for (onset, delay), n in counts.items()
        if 0 <= delay <= min(max_delay, today - onset) and n > 0
    }
    if sum(usable.values()) < NOWCAST_MIN_CASES:
        return None
    cdf = [0.0] * (max_delay + 1)
    cdf[max_delay] = 1.0
    for d in range(max_delay, 0, -1):
        at_d = sum(n for (_, delay), n in usable.items() if delay == d)
        at_risk = sum(
            n for (onset, delay), n in usable.items() if delay <= d and today - onset >= d
        )
        cdf[d - 1] = cdf[d] * (1 - at_d / at_risk) if at_risk else cdf[d]
    return cdf


@dataclass(frozen=True)
class Nowcast:
    """Daily counts corrected for cases not yet diagnosed."""

    counts: list[int]
    """Expected final counts per day (observed / completeness, rounded), observed
    counts where the day is complete or too incomplete to correct."""
    completeness: list[float]
    """Expected share of each day's cases seen so far, F(today - day)."""
    corrected: list[bool]
    """True where the count was scaled up."""


def nowcast(
    incidence: Sequence[int],
    cdf: Sequence[float],
    *,
    first_day: int,
    today: int,
    min_completeness: float = NOWCAST_MIN_COMPLETENESS,
) -> Nowcast:
    """The nowcast of ``incidence`` (``incidence[i]`` is day ``first_day + i``) under the
    delay distribution ``cdf`` (see :func:`delay_distribution`)."""
    counts, completeness, corrected = [], [], []
    for i, observed in enumerate(incidence):
        lag = today - (first_day + i)
        share = cdf[lag] if 0 <= lag < len(cdf) else 1.0
        scale = min_completeness <= share < 1.0
        counts.append(round(observed / share) if scale else observed)
        completeness.append(share)
        corrected.append(scale)
    return Nowcast(counts, completeness, corrected)
