"""Dose schedules per vaccine, as data with their sources, and the one function that
turns a person's recorded doses into what is complete, due and overdue.

The schedules are the application's configuration, versioned (``SCHEDULES_VERSION``,
shown with every answer), not rules on chain: a reminder or a coverage figure changes
no one's status and nothing on chain cites it, so there is nothing for a governance
vote to protect. A rule that does act on doses (the health code's "boosted" exemption)
states its own dose condition in its approved rule set.

Arithmetic, in day numbers (days since 1970-01-01):

* doses of a series are taken in date order, whatever dose number the giver recorded;
* a dose given before its minimum interval (after the previous valid dose, and where
  stated after the series' first) does not count, and the dose that replaces it keeps
  the minimum interval after the early one too (ACIP, General Best Practice
  Guidelines, "Timing and Spacing": no grace period is applied here);
* the next dose is due its recommended interval after the previous valid dose (or the
  first, for doses scheduled from the first), and overdue from the end of the
  recommended window;
* a yearly vaccine (influenza) is due again a year after its last dose;
* doses after ``as_of`` are not seen, so a coverage figure can be asked as of a date.

Only a series the person has started is planned: the chain holds no birth date, so a
first dose is never "due" here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

SCHEDULES_VERSION = "2026.1"
"""Changes when any schedule below changes; every answer names it."""
Status = Literal["complete", "scheduled", "due", "overdue"]
STATUS_TITLES: dict[str, str] = {
    "complete": "Complete",
    "scheduled": "Next dose not due yet",
    "due": "Dose due",
    "overdue": "Dose overdue",
}


@dataclass(frozen=True, kw_only=True)
class DoseRule:
    """When one dose of a series may be given and when it is due."""

    label: str
    min_days: int
    """Minimum interval after the previous valid dose: a dose given sooner does not count."""
    due_days: int
    """Recommended interval: the dose is due this many days after its anchor."""
    overdue_days: int
    """The dose is overdue from this many days after its anchor."""
    min_from_first: int = 0
    """Minimum interval after the series' first valid dose (0: none)."""
    from_first: bool = False
    """True if ``due_days`` and ``overdue_days`` count from the first dose, not the previous."""
    booster: bool = False
    """True for a dose after the primary series (the primary series is complete without it)."""


def counted_from_first(
    label: str, *, min_days: int, min_from_first: int, due_days: int, overdue_days: int
) -> DoseRule:
    """A dose scheduled from the series' first dose, not the previous one (the third
    dose of hepatitis B and HPV): it also needs ``min_from_first`` days after the first."""
    return DoseRule(
        label=label,
        min_days=min_days,
        min_from_first=min_from_first,
        due_days=due_days,
        overdue_days=overdue_days,
        from_first=True,
    )


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """A vaccine's dose schedule: the CVX codes it covers and the doses after the first."""

    id: str
    name: str
    cvx: tuple[str, ...]
    following: tuple[DoseRule, ...]
    """The doses after the first, in order."""
    yearly: DoseRule | None = None
    """For a vaccine given every season: the dose again after the last one."""
    source: str

    @property
    def primary_doses(self) -> int:
        """Doses in the primary series (the first, and every later dose but boosters)."""
        return 1 + sum(not rule.booster for rule in self.following)


SCHEDULES: tuple[Schedule, ...] = (
    Schedule(
        id="covid-19",
        name="COVID-19",
        cvx=("207", "208", "213", "229", "300", "510", "511"),
        following=(
            DoseRule(label="Dose 2", min_days=21, due_days=28, overdue_days=56),
            DoseRule(label="Booster", min_days=90, due_days=180, overdue_days=240, booster=True),
        ),
        source="National Health Commission of the PRC, COVID-19 vaccination technical "
        "guidance (1st ed., 2021): two inactivated doses 3 to 8 weeks apart; booster "
        "guidance (2022): a booster at least 3 months after the primary series. WHO SAGE "
        "roadmap (2023) for the mRNA vaccines' 21- and 28-day minimum intervals.",
    ),
    Schedule(
        id="hepatitis-b",
        name="Hepatitis B",
        cvx=("08", "43", "44", "45"),
        following=(
            DoseRule(label="Dose 2", min_days=28, due_days=30, overdue_days=60),
            counted_from_first(
                "Dose 3", min_days=56, min_from_first=112, due_days=180, overdue_days=240
            ),
        ),
        source="China NIP children's schedule (2021 ed.): hepatitis B at 0, 1 and 6 months; "
        "minimum intervals from ACIP's General Best Practice Guidelines, Table 3-1 "
        "(4 weeks, 8 weeks, and 16 weeks between doses 1 and 3).",
    ),
    Schedule(
        id="influenza",
        name="Influenza (seasonal)",
        cvx=("88", "141", "150"),
        following=(),
        yearly=DoseRule(label="This season's dose", min_days=180, due_days=365, overdue_days=395),
        source="WHO position paper on influenza vaccines (2022) and China CDC technical "
        "guidelines for seasonal influenza vaccination (2023-2024): one dose each season; "
        "the two-dose first season of children aged 6 months to 8 years needs an age the "
        "chain does not hold.",
    ),
    Schedule(
        id="mmr",
        name="Measles, mumps and rubella",
        cvx=("03", "05", "94"),
        following=(DoseRule(label="Dose 2", min_days=28, due_days=300, overdue_days=420),),
        source="China NIP children's schedule (2021 ed.): MMR at 8 and 18 months; minimum "
        "interval of 4 weeks from ACIP's General Best Practice Guidelines, Table 3-1.",
    ),
    Schedule(
        id="hpv",
        name="Human papillomavirus",
        cvx=("62", "118", "165"),
        following=(
            DoseRule(label="Dose 2", min_days=28, due_days=60, overdue_days=120),
            counted_from_first(
                "Dose 3", min_days=84, min_from_first=150, due_days=180, overdue_days=270
            ),
        ),
        source="WHO position paper on HPV vaccines (2022) and ACIP (2019): three doses at 0, "
        "1-2 and 6 months from age 15 (minimum 4 weeks, 12 weeks, and 5 months between "
        "doses 1 and 3); the two-dose schedule of ages 9 to 14 needs an age the chain does "
        "not hold.",
    ),
)
BY_ID = {schedule.id: schedule for schedule in SCHEDULES}
BY_CVX = {code: schedule for schedule in SCHEDULES for code in schedule.cvx}


@dataclass(frozen=True)
class Dose:
    """A recorded dose as the schedules read it: its CVX code and day."""

    vaccine: str
    day: int


@dataclass(frozen=True, kw_only=True)
class NextDose:
    """The next dose of a series: its number, label and dates (day numbers)."""

    number: int
    label: str
    earliest: int
    """The first day it counts if given."""
    due: int
    overdue_from: int
    booster: bool


@dataclass(frozen=True, kw_only=True)
class SeriesPlan:
    """Where one person stands in one vaccine's schedule on day ``as_of``."""

    schedule: Schedule
    valid: tuple[int, ...]
    """Days of the doses that count, in order."""
    too_early: tuple[int, ...]
    """Days of doses given before their minimum interval (they do not count)."""
    primary_complete: bool
    status: Status
    next: NextDose | None


def _earliest(rule: DoseRule, valid: list[int], last_early: int | None) -> int:
    earliest = valid[-1] + rule.min_days
    if rule.min_from_first:
        earliest = max(earliest, valid[0] + rule.min_from_first)
    if last_early is not None and last_early > valid[-1]:
        earliest = max(earliest, last_early + rule.min_days)
    return earliest


def _rule(schedule: Schedule, given: int) -> DoseRule | None:
    """The rule of the dose after ``given`` valid doses (None: the series is complete)."""
    if given - 1 < len(schedule.following):
        return schedule.following[given - 1]
    return schedule.yearly


def plan_series(schedule: Schedule, days: Iterable[int], *, as_of: int) -> SeriesPlan | None:
    """Where a person with doses on ``days`` stands in ``schedule`` on ``as_of``; None if
    they have no dose of it on or before that day."""
    valid: list[int] = []
    early: list[int] = []
    for day in sorted(d for d in days if d <= as_of):
        rule = _rule(schedule, len(valid)) if valid else None
        last_early = early[-1] if early else None
        if not valid or (rule is not None and day >= _earliest(rule, valid, last_early)):
            valid.append(day)
        else:
            early.append(day)  # too soon, or a dose beyond a complete series
    if not valid:
        return None
    rule = _rule(schedule, len(valid))
    following = None if rule is None else _next_dose(rule, valid, early)
    primary_complete = len(valid) >= schedule.primary_doses
    return SeriesPlan(schedule=schedule, valid=tuple(valid), too_early=tuple(early),
                      primary_complete=primary_complete,
                      status=_status(following, as_of, primary_complete=primary_complete),
                      next=following)  # fmt: skip


def _next_dose(rule: DoseRule, valid: list[int], early: list[int]) -> NextDose:
    """The dose after the ``valid`` ones, which ``rule`` governs."""
    anchor = valid[0] if rule.from_first else valid[-1]
    earliest = _earliest(rule, valid, early[-1] if early else None)
    due = max(anchor + rule.due_days, earliest)
    overdue = max(anchor + rule.overdue_days, due + 1)
    return NextDose(number=len(valid) + 1, label=rule.label, earliest=earliest, due=due,
                    overdue_from=overdue, booster=rule.booster)  # fmt: skip


def _status(following: NextDose | None, as_of: int, *, primary_complete: bool) -> Status:
    """Where the series stands on ``as_of``, given its next dose (None: none is left)."""
    if following is None:
        return "complete"
    if as_of >= following.overdue_from:
        return "overdue"
    if as_of >= following.due:
        return "due"
    # A complete primary series with a dose still to come: a booster or a new season.
    return "complete" if primary_complete else "scheduled"


def plan(doses: Iterable[Dose], *, as_of: int) -> list[SeriesPlan]:
    """Every started series of a person with ``doses`` on day ``as_of``, in the order of
    ``SCHEDULES`` (doses of vaccines no schedule covers are left out)."""
    days: dict[str, list[int]] = {}
    for dose in doses:
        schedule = BY_CVX.get(dose.vaccine)
        if schedule is not None:
            days.setdefault(schedule.id, []).append(dose.day)
    found = (plan_series(BY_ID[sid], days.get(sid, []), as_of=as_of) for sid in BY_ID)
    return [p for p in found if p is not None]
