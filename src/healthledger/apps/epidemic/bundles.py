"""One report carrying several records (a FHIR Bundle as a hospital sends it): case
reports, lab results and doses, each of them checked as its own function checks one,
recorded in one transaction, all or nothing.

The people come once each in transient ``patients``; every record names its person by
index (``patient``), so one person's three doses are one person, pseudonymised once.
Problems are named ``cases[i].field``, ``labs[i].field``, ``doses[i].field`` and
``transient.patients[i].field``.
"""

from __future__ import annotations

from typing import Any

from healthledger.apps.epidemic.cases import Person, check_people, check_reports, write_reports
from healthledger.apps.epidemic.observations import (
    VACCINATING_ROLES,
    check_doses,
    check_labs,
    raise_problems,
    write_doses,
    write_labs,
)
from healthledger.contracts.context import Context
from healthledger.contracts.errors import AccessDenied, InvalidArguments

MAX_RECORDS = 500
"""Records in one bundle (as ``report_cases`` admits reports)."""
REPORTING_ROLES = ("doctor", "lab")
"""Who reports cases and lab results (doses: observations.VACCINATING_ROLES)."""


def record_bundle(
    ctx: Context, *, cases: list[Any], labs: list[Any], doses: list[Any]
) -> dict[str, list[dict[str, Any]]]:
    """Check every record of a bundle, then record them all (none if any is wrong)."""
    total = len(cases) + len(labs) + len(doses)
    if not 1 <= total <= MAX_RECORDS:
        raise InvalidArguments(
            f"between 1 and {MAX_RECORDS} records per bundle",
            [{"field": "cases", "message": f"1 to {MAX_RECORDS} records in all"}],
        )
    role = ctx.caller.role
    if (cases or labs) and role not in REPORTING_ROLES:
        raise AccessDenied(f"a {role} records doses only: cases and lab results need a doctor")
    if doses and role not in VACCINATING_ROLES:
        raise AccessDenied(f"a {role} reports no doses: a doctor or nurse records them")
    values = ctx.transient.get("patients")
    if not isinstance(values, list) or not values:
        raise InvalidArguments(
            "transient 'patients' must list the people the records name",
            [{"field": "transient.patients", "message": "a list of the people"}],
        )
    errors: list[dict[str, str]] = []
    people = check_people(values, "transient.patients", errors)
    checked_cases, found = check_reports(
        ctx, cases, _named(cases, people, "cases", errors), "cases[{i}]."
    )
    errors += found
    checked_labs, found = check_labs(ctx, labs, _named(labs, people, "labs", errors), "labs[{i}].")
    errors += found
    checked_doses, found = check_doses(
        ctx, doses, _named(doses, people, "doses", errors), "doses[{i}]."
    )
    raise_problems("report_bundle", errors + found)
    return {
        "cases": write_reports(ctx, checked_cases, suffixed=True),
        "labs": write_labs(ctx, checked_labs, suffixed=True),
        "doses": write_doses(ctx, checked_doses, suffixed=True),
    }


def _named(
    records: list[Any], people: list[Person], field: str, errors: list[dict[str, str]]
) -> list[Person]:
    """The person each record names by index (a problem where it names none)."""
    named = []
    for i, record in enumerate(records):
        index = record["patient"]
        if not 0 <= index < len(people):
            errors.append({"field": f"{field}[{i}].patient", "message": "no such person"})
            named.append(Person({}, ""))
        else:
            named.append(people[index])
    return named
