"""Test positivity by specimen day, shown only where it means something.

A day's share positive over a handful of tests swings between 0 and 100 %, and a line
drawn over days without tests joins values that were never measured. So the share is
taken over the seven days ending on a day (tests and positives summed), and given only
for a day that has tests of its own and whose seven days hold at least
POSITIVITY_MIN_TESTS tests; every other day has none, and the chart breaks its line
there (``segment`` numbers each unbroken run)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from healthledger.apps.epidemic.dates import iso

POSITIVITY_WINDOW = 7
"""Days summed for each day's share positive."""
POSITIVITY_MIN_TESTS = 20
"""The least number of tests in a window for its share positive to be shown."""
POSITIVITY_RULE = (
    f"Share positive over the {POSITIVITY_WINDOW} days ending on each day, shown only for "
    f"days with tests of their own and at least {POSITIVITY_MIN_TESTS} tests in those "
    f"{POSITIVITY_WINDOW} days."
)


def positivity(
    tests: Sequence[tuple[str, str, int, int, int]], first: int, today: int
) -> list[dict[str, Any]]:
    """Per specimen day from ``first`` (or the first test) to today: tests, positives,
    the window's tests and positives, and ``pct`` (None where the rule above gives no
    share) with the ``segment`` of the line it belongs to."""
    by_day: dict[int, list[int]] = {}
    for _, _, day, n, positive in tests:
        counts = by_day.setdefault(day, [0, 0])
        counts[0] += n
        counts[1] += positive
    start = min([first, *by_day])
    out: list[dict[str, Any]] = []
    segment = 0
    shown_before = False
    for day in range(start, today + 1):
        n, positive = by_day.get(day, [0, 0])
        window = [by_day.get(d, [0, 0]) for d in range(day - POSITIVITY_WINDOW + 1, day + 1)]
        window_tests = sum(w[0] for w in window)
        window_positive = sum(w[1] for w in window)
        shown = n > 0 and window_tests >= POSITIVITY_MIN_TESTS
        if shown and not shown_before:
            segment += 1
        shown_before = shown
        out.append(
            {
                "day": day,
                "date": iso(day),
                "tests": n,
                "positive": positive,
                "window_tests": window_tests,
                "window_positive": window_positive,
                "pct": round(100 * window_positive / window_tests, 1) if shown else None,
                "segment": segment if shown else None,
            }
        )
    return out
