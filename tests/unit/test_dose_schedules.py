"""Dose-schedule arithmetic (apps/credentials/schedules.py): minimum intervals, doses
given too early, doses scheduled from the first, boosters, yearly vaccines, as-of dates."""

from __future__ import annotations

import pytest

from healthledger.apps.credentials.schedules import (
    BY_CVX,
    BY_ID,
    SCHEDULES,
    Dose,
    plan,
    plan_series,
)

COVID, HEP_B, FLU = BY_ID["covid-19"], BY_ID["hepatitis-b"], BY_ID["influenza"]
D0 = 20_000  # a day number: 4 Oct 2024


def test_every_cvx_belongs_to_one_schedule_and_every_schedule_names_its_source() -> None:
    assert sum(len(s.cvx) for s in SCHEDULES) == len(BY_CVX)
    assert all(len(s.source) > 40 for s in SCHEDULES)


def test_one_dose_then_dose_two_scheduled_due_and_overdue_by_the_day() -> None:
    def status(as_of: int) -> str:
        found = plan_series(COVID, [D0], as_of=as_of)
        assert found is not None and found.next is not None
        assert (found.next.number, found.next.earliest) == (2, D0 + 21)
        assert (found.next.due, found.next.overdue_from) == (D0 + 28, D0 + 56)
        return found.status

    assert [status(D0 + n) for n in (0, 27, 28, 55, 56, 400)] == [
        "scheduled", "scheduled", "due", "due", "overdue", "overdue",
    ]  # fmt: skip


def test_a_dose_before_the_minimum_interval_does_not_count() -> None:
    early = plan_series(COVID, [D0, D0 + 20], as_of=D0 + 60)
    assert early is not None and early.valid == (D0,) and early.too_early == (D0 + 20,)
    assert early.status == "overdue" and not early.primary_complete
    # the replacement keeps the minimum interval after the early dose too
    assert early.next is not None and early.next.earliest == D0 + 20 + 21
    on_the_day = plan_series(COVID, [D0, D0 + 21], as_of=D0 + 60)
    assert on_the_day is not None and on_the_day.valid == (D0, D0 + 21)
    assert on_the_day.primary_complete and on_the_day.status == "complete"


def test_a_replacement_given_too_soon_after_the_early_dose_does_not_count_either() -> None:
    found = plan_series(COVID, [D0, D0 + 10, D0 + 25], as_of=D0 + 40)
    assert found is not None and found.valid == (D0,) and found.too_early == (D0 + 10, D0 + 25)
    found = plan_series(COVID, [D0, D0 + 10, D0 + 31], as_of=D0 + 40)
    assert found is not None and found.valid == (D0, D0 + 31)


def test_the_booster_is_due_after_the_primary_series_which_stays_complete() -> None:
    primary = [D0, D0 + 28]
    waiting = plan_series(COVID, primary, as_of=D0 + 100)
    assert waiting is not None and waiting.status == "complete" and waiting.next is not None
    assert waiting.next.booster and waiting.next.due == D0 + 28 + 180
    due = plan_series(COVID, primary, as_of=D0 + 28 + 180)
    assert due is not None and due.status == "due" and due.primary_complete
    too_soon = plan_series(COVID, [*primary, D0 + 28 + 89], as_of=D0 + 28 + 300)
    assert too_soon is not None and too_soon.status == "overdue" and len(too_soon.valid) == 2
    boosted = plan_series(COVID, [*primary, D0 + 28 + 90], as_of=D0 + 28 + 300)
    assert boosted is not None and boosted.status == "complete" and boosted.next is None


def test_hepatitis_b_third_dose_counts_from_the_first_and_needs_sixteen_weeks() -> None:
    found = plan_series(HEP_B, [D0, D0 + 30], as_of=D0 + 100)
    assert found is not None and found.next is not None
    assert found.next.earliest == D0 + 112  # 8 weeks after dose 2 would be D0 + 86
    assert (found.next.due, found.next.overdue_from) == (D0 + 180, D0 + 240)
    assert found.status == "scheduled"
    early = plan_series(HEP_B, [D0, D0 + 30, D0 + 100], as_of=D0 + 200)
    assert early is not None and early.too_early == (D0 + 100,) and early.status == "due"


def test_influenza_is_one_dose_a_season_due_again_a_year_later() -> None:
    found = plan_series(FLU, [D0, D0 + 7], as_of=D0 + 30)
    assert found is not None and found.status == "complete" and found.too_early == (D0 + 7,)
    assert found.next is not None and found.next.due == D0 + 365
    later = plan_series(FLU, [D0], as_of=D0 + 400)
    assert later is not None and later.status == "overdue"
    next_season = plan_series(FLU, [D0, D0 + 370], as_of=D0 + 400)
    assert next_season is not None and next_season.status == "complete"


def test_doses_after_the_as_of_day_are_not_seen() -> None:
    assert plan_series(COVID, [D0 + 5], as_of=D0) is None
    found = plan_series(COVID, [D0, D0 + 28], as_of=D0 + 27)
    assert found is not None and found.valid == (D0,)


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_plan_groups_products_of_one_series_in_date_order(order: tuple[int, int]) -> None:
    doses = [Dose("510", D0), Dose("208", D0 + 30)]
    found = plan([doses[i] for i in order] + [Dose("999", D0), Dose("150", D0)], as_of=D0 + 40)
    assert [(p.schedule.id, p.status) for p in found] == [
        ("covid-19", "complete"), ("influenza", "complete"),
    ]  # fmt: skip
