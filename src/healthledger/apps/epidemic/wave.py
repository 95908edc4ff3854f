"""The live outbreak's story: how many cases the demo reports today, and how many doses
it gives, so that a long live run shows a wave that peaks and declines.

Today's expected reports come from the renewal equation over the onsets on chain when
the day's first live round runs (the live step keeps that outlook for the whole day,
however many rounds run, so the day's own reports do not feed back into it):

    expected(t) = R(t) · Σ_s w_s · I(t - s)

with the dashboard's serial interval ``w`` and a reproduction number that falls as
the outbreak goes on:

    R(t) = R0 · S(t) · (1 - measures(t) · MEASURES_EFFECT)

- ``S(t)``, the susceptible share: 1 minus the people infected and the people
  protected by vaccination (``VACCINE_EFFICACY`` of those vaccinated) over the
  simulated population (the simulator's people per district * districts); the demo
  records infections and doses in the same sample (the simulation's reported share),
  so each record stands for 1 / reported share people;
- ``measures(t)``: public-health measures start once the reports of the last seven
  days reach ``MEASURES_START``, last at least ``MEASURES_MIN_DAYS`` and are lifted
  once the weekly reports are below ``MEASURES_LIFT``; while they are on, the
  vaccination campaign steps up from ``DAILY_DOSES[0]`` to ``DAILY_DOSES[1]`` doses a
  day. Each wave thus peaks and declines, and the campaign's growing coverage makes
  each later wave smaller.

Reports a day are capped at ``MAX_DAILY_CASES``, so the demo's data grow by a bounded
amount a day however long it runs (see ``docs/operator-guide.md``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from healthledger.apps.epidemic.simulate import DEMO_PARAMS, SeirParams
from healthledger.apps.epidemic.surveillance import serial_interval

MEASURES_START = 150
"""Reports in seven days at which measures start."""
MEASURES_LIFT = 40
"""Reports in seven days below which measures are lifted."""
MEASURES_MIN_DAYS = 21
"""Days measures stay on once started."""
MEASURES_EFFECT = 0.65
"""Share of transmission the measures stop."""
VACCINE_EFFICACY = 0.7
DAILY_DOSES = (20, 80)
"""Doses a day: before the measures, and while they are on (the campaign)."""
MAX_DAILY_CASES = 60
"""Most reports the live demo makes in one day."""


@dataclass(frozen=True)
class Outlook:
    """What the live demo does today."""

    day: int
    reproduction: float
    """R(t) today."""
    expected: int
    """Reports to make today."""
    measures: bool
    """Whether public-health measures are on."""
    doses: int
    """Doses to give today."""


def outlook(
    cases: Iterable[Mapping[str, Any]],
    doses_given: int,
    districts: int,
    today: int,
    params: SeirParams = DEMO_PARAMS,
) -> Outlook:
    """Today's outlook from the case records on chain (``onset`` day and ``status``)
    and the doses given so far."""
    onsets: dict[int, int] = {}
    reported = 0
    for record in cases:
        if record["status"] == "rejected":
            continue
        reported += 1
        onsets[record["onset"]] = onsets.get(record["onset"], 0) + 1
    measures = measures_on(onsets, today)
    population = max(1, params.population * max(1, districts))
    infected = reported / params.reported_share
    protected = VACCINE_EFFICACY * doses_given / params.reported_share
    susceptible = max(0.0, 1.0 - (infected + protected) / population)
    r0 = params.beta / params.gamma
    reproduction = r0 * susceptible * (1.0 - MEASURES_EFFECT if measures else 1.0)
    weights = serial_interval()
    pressure = sum(w * onsets.get(today - s, 0) for s, w in enumerate(weights, start=1))
    expected = min(MAX_DAILY_CASES, round(reproduction * pressure))
    return Outlook(
        day=today,
        reproduction=reproduction,
        expected=max(expected, 1 if pressure > 0 else 0),
        measures=measures,
        doses=DAILY_DOSES[1] if measures else DAILY_DOSES[0],
    )


def measures_on(onsets: Mapping[int, int], today: int) -> bool:
    """Whether measures are on today: walked day by day over the onsets (weekly sums),
    starting at ``MEASURES_START``, lifting below ``MEASURES_LIFT`` after at least
    ``MEASURES_MIN_DAYS``."""
    if not onsets:
        return False
    on = False
    since = 0
    for day in range(min(onsets), today):
        weekly = sum(onsets.get(d, 0) for d in range(day - 6, day + 1))
        if not on and weekly >= MEASURES_START:
            on, since = True, day
        elif on and weekly < MEASURES_LIFT and day - since >= MEASURES_MIN_DAYS:
            on = False
    return on
