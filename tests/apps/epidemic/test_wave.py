"""The live outbreak's story (wave.py): waves that peak and decline under measures,
later waves smaller as the campaign's coverage grows, a bounded number of reports a
day, and measures with hysteresis."""

from __future__ import annotations

import random
from typing import Any

from healthledger.apps.epidemic.wave import (
    DAILY_DOSES,
    MAX_DAILY_CASES,
    MEASURES_LIFT,
    MEASURES_MIN_DAYS,
    MEASURES_START,
    measures_on,
    outlook,
)

TODAY = 20_000
DISTRICTS = 21


def growing_history(days: int = 30, rate: float = 1.09) -> list[dict[str, Any]]:
    """An outbreak growing by ``rate`` a day for ``days`` days before TODAY."""
    return [
        {"status": "confirmed", "onset": TODAY - days + d}
        for d in range(days)
        for _ in range(int(2 * rate**d))
    ]


def run(days: int, seed: int = 1) -> list[tuple[int, float, bool]]:
    """The story over ``days`` days: each day's expected reports committed."""
    rng = random.Random(seed)
    cases = growing_history()
    doses = 150
    story = []
    for day in range(TODAY, TODAY + days):
        today = outlook(cases, doses, DISTRICTS, day)
        cases += [
            {"status": "confirmed", "onset": day - rng.choice((0, 1, 1, 2, 3))}
            for _ in range(today.expected)
        ]
        doses += today.doses
        story.append((today.expected, today.reproduction, today.measures))
    return story


def test_waves_peak_and_decline_and_later_waves_are_smaller() -> None:
    story = run(150)
    expected = [e for e, _, _ in story]
    assert max(expected) <= MAX_DAILY_CASES
    first_peak = max(range(30), key=lambda d: expected[d])
    assert max(expected[first_peak + 5 : first_peak + 20]) < expected[first_peak] / 2
    assert any(on for _, _, on in story) and not all(on for _, _, on in story)
    reproduction = [r for _, r, on in story if not on]
    assert reproduction[-1] < reproduction[0], "coverage and immunity lower R over time"


def test_measures_start_hold_and_lift_with_hysteresis() -> None:
    surge = {TODAY - 40 + d: MEASURES_START for d in range(3)}  # a week over the start
    assert measures_on(surge, TODAY - 36)
    # still on before the minimum duration even though the weekly count fell to nothing
    assert measures_on(surge, TODAY - 40 + MEASURES_MIN_DAYS - 1)
    assert not measures_on(surge, TODAY)
    steady = {TODAY - 60 + d: (MEASURES_LIFT + 7) // 7 for d in range(60)}
    assert not measures_on(steady, TODAY), "a steady level below the start never starts them"
    assert not measures_on({}, TODAY)


def test_doses_step_up_while_measures_are_on() -> None:
    quiet = outlook(growing_history(10, 1.0), 0, DISTRICTS, TODAY)
    surge = [{"status": "confirmed", "onset": TODAY - 2}] * MEASURES_START
    busy = outlook(surge, 0, DISTRICTS, TODAY)
    assert (quiet.measures, quiet.doses) == (False, DAILY_DOSES[0])
    assert (busy.measures, busy.doses) == (True, DAILY_DOSES[1])


def test_rejected_reports_do_not_count_and_no_history_means_no_cases() -> None:
    rejected = [{"status": "rejected", "onset": TODAY - 2}] * 50
    assert outlook(rejected, 0, DISTRICTS, TODAY).expected == 0
    assert outlook([], 0, DISTRICTS, TODAY).expected == 0
