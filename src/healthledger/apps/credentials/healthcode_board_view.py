"""The public health-code page's reading of the board's counts: the GET filters (day range,
district, rule clause) checked into a :class:`BoardFilter`, the counts summed per rule
clause and per district with a day-by-day line each, what stands out (a district whose
changes to red are far above the other districts' that day, appeals the CDC overturned),
and the long table cut into pages. It only reads :meth:`HealthCodeBoard.summary`."""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode

ROWS_PER_PAGE = 50
FAR_ABOVE = 3.0
"""A district stands out on a day when its changes to red are at least this many times the
median district's that day (and at least :data:`FAR_ABOVE_MIN`)."""
FAR_ABOVE_MIN = 10


@dataclass(frozen=True, kw_only=True)
class BoardFilter:
    """What the reader asked to see; empty strings and ``None`` mean everything."""

    start: date | None = None
    """First day shown (inclusive)."""
    end: date | None = None
    """Last day shown (inclusive)."""
    region: str = ""
    """A district's code."""
    clause: str = ""
    """A rule clause's name."""
    page: int = 1
    """Page of the long table, from 1."""

    def query(self, **override: object) -> str:
        """This filter as a query string (for links to other pages of the table)."""
        fields = {
            "from": self.start.isoformat() if self.start else "",
            "to": self.end.isoformat() if self.end else "",
            "region": self.region,
            "clause": self.clause,
            "page": str(self.page),
        }
        fields.update({k: str(v) for k, v in override.items()})
        return urlencode({k: v for k, v in fields.items() if v and (k, v) != ("page", "1")})


def _day(text: str, label: str, errors: list[str]) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append(f"“{label}” must be a date such as 2026-12-07, not “{text[:40]}”.")
        return None


def parse_filter(
    params: Mapping[str, str], *, regions: Mapping[str, str], clauses: Mapping[str, str]
) -> tuple[BoardFilter, list[str]]:
    """The filter asked for in ``params`` and one sentence per value refused (a refused
    value filters nothing)."""
    errors: list[str] = []
    start = _day(params.get("from", "").strip(), "From", errors)
    end = _day(params.get("to", "").strip(), "To", errors)
    if start and end and start > end:
        errors.append(f"“From” ({start:%d %b %Y}) is after “To” ({end:%d %b %Y}).")
        start, end = end, start
    region = params.get("region", "").strip()
    if region and region not in regions:
        errors.append(f"No colour change is recorded in a district with code “{region[:40]}”.")
        region = ""
    clause = params.get("clause", "").strip()
    if clause and clause not in clauses:
        errors.append(f"No rule clause is named “{clause[:40]}”.")
        clause = ""
    page_text = params.get("page", "1").strip() or "1"
    page = int(page_text) if page_text.isdigit() and 0 < len(page_text) < 6 else 0
    if page < 1:
        errors.append(f"“Page” must be a whole number from 1, not “{page_text[:20]}”.")
        page = 1
    return BoardFilter(start=start, end=end, region=region, clause=clause, page=page), errors


def choices(summary: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The districts (code → name) and rule clauses (name → title) the counts mention."""
    regions = {r["region"]: r["region_name"] or r["region"] for r in summary["changes"]}
    clauses: dict[str, str] = {}
    for r in summary["changes"]:
        clauses.setdefault(r["clause"], r["clause_title"] or r["clause"])
    return dict(sorted(regions.items(), key=lambda kv: kv[1])), dict(sorted(clauses.items()))


def _kept(row: Mapping[str, Any], f: BoardFilter, *, day_key: str = "day") -> bool:
    day = date.fromisoformat(row[day_key]) if row.get(day_key) else None
    return not (
        (f.start and day and day < f.start)
        or (f.end and day and day > f.end)
        or (f.region and row["region"] != f.region)
        or (f.clause and row["clause"] != f.clause)
    )


def sparkline(values: list[int], *, width: int = 120, height: int = 24) -> str:
    """SVG polyline points for ``values`` scaled into ``width`` by ``height``."""
    if not values:
        return ""
    top = max(max(values), 1)
    step = width / max(len(values) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{height - 2 - (height - 4) * v / top:.1f}" for i, v in enumerate(values)
    )


def overview(summary: Mapping[str, Any], f: BoardFilter) -> dict[str, Any]:
    """The filtered counts: per day by colour, per clause and per district with a
    day-by-day line, the districts and appeals that stand out, and one page of rows."""
    rows = [r for r in summary["changes"] if _kept(r, f)]
    days = sorted({r["day"] for r in rows})
    per_day: dict[str, Counter[str]] = {d: Counter() for d in days}
    clauses: dict[tuple[str, str], dict[str, Any]] = {}
    districts: dict[str, dict[str, Any]] = {}
    red_by_day: dict[str, Counter[str]] = {d: Counter() for d in days}
    for r in rows:
        per_day[r["day"]][r["colour"]] += r["changes"]
        c = clauses.setdefault(
            (r["clause"], r["colour"]),
            {"clause": r["clause"], "title": r["clause_title"] or r["clause"],
             "colour": r["colour"], "changes": 0, "by_appeal": 0, "per_day": Counter()},
        )  # fmt: skip
        c["changes"] += r["changes"]
        c["by_appeal"] += r["changes"] if r["by_appeal"] else 0
        c["per_day"][r["day"]] += r["changes"]
        d = districts.setdefault(
            r["region"],
            {"region": r["region"], "name": r["region_name"], "changes": 0, "red": 0,
             "yellow": 0, "green": 0, "overturned": 0, "per_day": Counter(), "flags": []},
        )  # fmt: skip
        d["changes"] += r["changes"]
        d[r["colour"]] += r["changes"]
        d["per_day"][r["day"]] += r["changes"]
        if r["colour"] == "red" and not r["by_appeal"]:
            red_by_day[r["day"]][r["region"]] += r["changes"]
    appeals = [a for a in summary["appeals"] if _kept(a, f, day_key="filed")]
    for a in appeals:
        if a["status"] == "overturned" and a["region"] in districts:
            districts[a["region"]]["overturned"] += 1
    standouts: list[dict[str, Any]] = []
    for day in days:
        counts = [red_by_day[day].get(region, 0) for region in districts]
        norm = statistics.median(counts) if counts else 0
        for region, n in red_by_day[day].items():
            if n >= FAR_ABOVE_MIN and n >= FAR_ABOVE * max(norm, 1):
                times = n / max(norm, 1)
                districts[region]["flags"].append(day)
                standouts.append(
                    {"kind": "far-above", "day": day, "region": region,
                     "name": districts[region]["name"], "red": n, "norm": norm,
                     "times": times}
                )  # fmt: skip
    for a in appeals:
        if a["status"] == "overturned":
            standouts.append({"kind": "overturned", **a})
    for item in (*clauses.values(), *districts.values()):
        item["line"] = sparkline([item["per_day"].get(d, 0) for d in days])
    pages = max(1, -(-len(rows) // ROWS_PER_PAGE))
    page = min(f.page, pages)
    return {
        "rows": rows[(page - 1) * ROWS_PER_PAGE : page * ROWS_PER_PAGE],
        "row_count": len(rows),
        "page": page,
        "pages": pages,
        "first_row": (page - 1) * ROWS_PER_PAGE + 1,
        "changes": sum(r["changes"] for r in rows),
        "days": [
            {"day": d, **{c: per_day[d][c] for c in ("red", "yellow", "green")}} for d in days
        ],
        "clauses": sorted(clauses.values(), key=lambda c: -c["changes"]),
        "districts": sorted(districts.values(), key=lambda d: -d["red"]),
        "appeals": appeals,
        "standouts": standouts,
    }


CSV_FIELDS = ("day", "region", "region_name", "rule_version", "clause", "clause_title",
              "colour", "by_appeal", "changes")  # fmt: skip


def as_csv(summary: Mapping[str, Any], f: BoardFilter) -> str:
    """Every change count the filter keeps, one CSV row each (all pages)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(r for r in summary["changes"] if _kept(r, f))
    return out.getvalue()
