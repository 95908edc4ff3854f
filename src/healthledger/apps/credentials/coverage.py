"""Vaccination coverage and its gaps by region, for the CDC: of each region's
population, how many have started a vaccine's series, completed its primary series,
have a dose due and have one overdue, on a chosen day.

The doses are the epidemic application's records as its declared query
``list_observations`` returns them to the caller (a CDC sees those of the regions it
serves), every page of them; the regions and their populations come from its declared
query ``reference``. A person is counted in the region of their latest dose of the
vaccine (the chain holds no address). Nothing here is personal: pseudonymous ids are
grouped and dropped. Pure functions: the pages and the API run the same code over the
same inputs.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from healthledger.apps.credentials.schedules import BY_ID, SCHEDULES_VERSION, plan_series
from healthledger.errors import HealthledgerError
from healthledger.node.seam import AppNode

EPOCH = dt.date(1970, 1, 1)
EARLIEST = dt.date(2000, 1, 1)
DEFAULT_VACCINE = "covid-19"
OVERSEEING_KINDS = ("cdc", "commission")
DOSES_PAGE = 10_000
"""Vaccination records asked for in one call (the most the epidemic query returns);
a figure reads every page."""
_REGION = re.compile(r"^[0-9]{6}$")
COUNTS = ("started", "complete", "up_to_date", "due", "overdue")
"""``up_to_date``: nothing due (the series complete, or its next dose not due yet)."""


class CoverageFilterError(HealthledgerError, ValueError):
    """A filter is not usable; ``errors`` names each field (``region``, ``vaccine``,
    ``as_of``) with what it must be."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


@dataclass(frozen=True, kw_only=True)
class Filters:
    """What a coverage figure is asked for."""

    vaccine: str
    region: str
    """A GB/T 2260 code, or "" for every region in view."""
    as_of: int
    """Day number."""


def day_number(date: dt.date) -> int:
    """Days since 1970-01-01."""
    return (date - EPOCH).days


def iso(day: int) -> str:
    """The ISO date of a day number."""
    return (EPOCH + dt.timedelta(days=day)).isoformat()


def check_filters(
    *, vaccine: str, region: str, as_of: str, today: int, regions: Iterable[str]
) -> Filters:
    """The filters as given (empty: the defaults), or CoverageFilterError naming each
    one that is not usable."""
    errors = []
    vaccine = vaccine.strip() or DEFAULT_VACCINE
    if vaccine not in BY_ID:
        known = ", ".join(f"{s.name} ({key})" for key, s in BY_ID.items())
        message = f"no vaccine “{vaccine[:40]}” has a schedule; one of {known}"
        errors.append({"field": "vaccine", "message": message})
    region = region.strip()
    if region and not _REGION.match(region):
        message = f"“{region[:40]}” is not a six-digit region code (GB/T 2260)"
        errors.append({"field": "region", "message": message})
    elif region and region not in set(regions):
        errors.append({"field": "region", "message": f"no region {region} is on the ledger"})
    day = today
    if as_of.strip():
        try:
            day = day_number(dt.date.fromisoformat(as_of.strip()))
        except ValueError:
            errors.append({"field": "as_of", "message": "a date, YYYY-MM-DD"})
        else:
            if not day_number(EARLIEST) <= day <= today:
                errors.append({"field": "as_of", "message": f"from 2000-01-01 to {iso(today)}"})
    if errors:
        raise CoverageFilterError(errors)
    return Filters(vaccine=vaccine, region=region, as_of=day)


def _rows_of(regions: Mapping[str, Mapping[str, Any]], chosen: str) -> list[str]:
    """The regions a figure is broken down into: the chosen region's children (itself if
    it has none); with none chosen, the cities of a single province, else the provinces."""
    if not chosen:
        tops = sorted(c for c, r in regions.items() if not r.get("parent"))
        if len(tops) != 1:
            return tops
        chosen = tops[0]
    children = sorted(c for c, r in regions.items() if r.get("parent") == chosen)
    return children or [chosen]


def _ancestors(code: str, regions: Mapping[str, Mapping[str, Any]]) -> list[str]:
    found: list[str] = []
    while code and code not in found and len(found) < 8:
        found.append(code)
        code = str((regions.get(code) or {}).get("parent") or "")
    return found


def _population(
    row: str, regions: Mapping[str, Mapping[str, Any]], populations: Mapping[str, Any]
) -> tuple[int | None, str]:
    """The row's recorded population, else the sum over the places below it whose own
    ancestors (below the row) record none; and the sources it comes from."""
    if row in populations:
        record = populations[row]
        return int(record["population"]), f"{record['source']} ({record['year']})"
    total, sources = 0, set()
    for code, record in populations.items():
        line = _ancestors(code, regions)
        if row in line and not any(a in populations for a in line[1 : line.index(row)]):
            total += int(record["population"])
            sources.add(f"{record['source']} ({record['year']})")
    return (total or None), "; ".join(sorted(sources))


def _share(count: int, population: int | None) -> float | None:
    return None if not population else round(100 * count / population, 4)


def coverage(
    doses: Iterable[Mapping[str, Any]], reference: Mapping[str, Any], filters: Filters
) -> dict[str, Any]:
    """The coverage figure (JSON): per region of the breakdown, its population with its
    source, people who started the series, completed the primary series, have nothing
    due, have a dose due and have one overdue, each also as a percentage of the
    population (the last three add up to those who started)."""
    schedule = BY_ID[filters.vaccine]
    regions = {str(r["code"]): r for r in reference.get("regions", [])}
    populations = reference.get("populations", {})
    rows = _rows_of(regions, filters.region)
    days: dict[str, list[int]] = {}
    latest: dict[str, tuple[int, str]] = {}
    for dose in doses:
        if str(dose.get("vaccine")) not in schedule.cvx or int(dose["day"]) > filters.as_of:
            continue
        pid = str(dose["pid"])
        days.setdefault(pid, []).append(int(dose["day"]))
        latest[pid] = max(latest.get(pid, (-1, "")), (int(dose["day"]), str(dose["region"])))
    counts = {row: dict.fromkeys(COUNTS, 0) for row in rows}
    outside = 0
    for pid, given in days.items():
        plan = plan_series(schedule, given, as_of=filters.as_of)
        row = next((a for a in _ancestors(latest[pid][1], regions) if a in counts), None)
        if plan is None:
            continue
        if row is None:
            outside += 1
            continue
        counts[row]["started"] += 1
        counts[row]["complete"] += plan.primary_complete
        counts[row]["up_to_date"] += plan.status in ("complete", "scheduled")
        counts[row]["due"] += plan.status == "due"
        counts[row]["overdue"] += plan.status == "overdue"

    def line(code: str, name: str, found: Mapping[str, int], population: int | None,
             source: str) -> dict[str, Any]:  # fmt: skip
        shares = {f"{k}_pct": _share(found[k], population) for k in COUNTS}
        return {"code": code, "name": name, "population": population,
                "population_source": source, **found, **shares}  # fmt: skip

    table = []
    for code in rows:
        population, source = _population(code, regions, populations)
        table.append(line(code, str(regions[code]["name"]), counts[code], population, source))
    table.sort(key=lambda r: (-(r["overdue_pct"] or 0), -r["overdue"], r["code"]))
    sums = {k: sum(c[k] for c in counts.values()) for k in COUNTS}
    known = [r["population"] for r in table if r["population"]]
    chosen = regions.get(filters.region) if filters.region else None
    return {
        "vaccine": {"id": schedule.id, "name": schedule.name, "cvx": list(schedule.cvx),
                    "primary_doses": schedule.primary_doses, "source": schedule.source},
        "schedules_version": SCHEDULES_VERSION,
        "as_of": iso(filters.as_of),
        "region": None if chosen is None else {"code": filters.region, "name": chosen["name"]},
        "rows": table,
        "total": line(filters.region or "all", "All regions shown", sums,
                      sum(known) if len(known) == len(table) and known else None, ""),
        "outside_rows": outside,
    }  # fmt: skip


def may_see(kind: str) -> bool:
    """True for the organisations whose view of the doses spans regions (a CDC, the
    commission): a hospital's own doses over a region's population would mislead."""
    return kind in OVERSEEING_KINDS


def inputs(node: AppNode, identity: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The doses ``identity`` sees and the reference data, through the epidemic
    application's declared queries (signed as ``identity``, whose key the node holds)."""
    doses: list[dict[str, Any]] = []
    args: dict[str, Any] = {"kind": "vaccination", "limit": DOSES_PAGE, "count": False}
    while True:  # every page of them
        page = node.query(identity, "epidemic", "list_observations", args)
        doses += page["observations"]
        if not page["next"]:
            return doses, dict(node.query(identity, "epidemic", "reference", {}))
        args["after"] = str(page["next"])


def region_options(reference: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(code, "name (code)") of the provinces and cities, for the region filter."""
    return [
        (str(r["code"]), f"{r['name']} ({r['code']})")
        for r in reference.get("regions", [])
        if r.get("level") in ("province", "city")
    ]
