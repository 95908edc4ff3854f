"""The public health-code page's reading of the board: filters checked with a sentence per
refused value, counts per clause and district, a district far above the others on a day
and an overturned appeal listed as standing out, and the long table in pages."""

from __future__ import annotations

from datetime import date
from typing import Any

from healthledger.apps.credentials import healthcode_board_view as view


def _row(day: str, region: str, clause: str, colour: str, n: int) -> dict[str, Any]:
    return {
        "day": day, "region": region, "region_name": f"District {region}",
        "rule_version": "2026.2", "clause": clause, "clause_title": f"Clause {clause}",
        "colour": colour, "by_appeal": False, "changes": n,
    }  # fmt: skip


def _summary() -> dict[str, Any]:
    rows = [
        _row(f"2026-12-0{d}", str(440100 + r), "confirmed-case", "red", 2)
        for d in range(1, 8)
        for r in range(10)
    ]
    rows.append(_row("2026-12-05", "440199", "confirmed-case", "red", 40))
    rows.append(_row("2026-12-05", "440101", "close-contact", "yellow", 3))
    appeals = [
        {"filed": "2026-12-06", "region": "440102", "region_name": "District 440102",
         "colour": "yellow", "clause": "close-contact", "grounds_text": "No exposure",
         "status": "overturned", "reason_text": "The fact was recorded in error"},
        {"filed": "2026-12-06", "region": "440103", "region_name": "", "colour": "red",
         "clause": "confirmed-case", "grounds_text": "Recovered", "status": "upheld",
         "reason_text": "The rules were applied correctly"},
    ]  # fmt: skip
    return {"changes": rows, "appeals": appeals}


def test_a_district_far_above_the_others_and_an_overturned_appeal_stand_out() -> None:
    shown = view.overview(_summary(), view.BoardFilter())
    far = [s for s in shown["standouts"] if s["kind"] == "far-above"]
    assert [(s["day"], s["region"], s["red"], s["norm"]) for s in far] == [
        ("2026-12-05", "440199", 40, 2)
    ]
    assert [s["region"] for s in shown["standouts"] if s["kind"] == "overturned"] == ["440102"]
    district = next(d for d in shown["districts"] if d["region"] == "440199")
    assert district["flags"] == ["2026-12-05"] and district["red"] == 40
    clause = next(c for c in shown["clauses"] if c["clause"] == "confirmed-case")
    assert clause["changes"] == 7 * 10 * 2 + 40
    assert len(clause["line"].split()) == 7


def test_the_long_table_comes_in_pages_and_the_filter_keeps_only_what_it_names() -> None:
    summary = _summary()
    first = view.overview(summary, view.BoardFilter())
    assert (first["row_count"], first["pages"], len(first["rows"])) == (72, 2, 50)
    second = view.overview(summary, view.BoardFilter(page=2))
    assert (second["first_row"], len(second["rows"])) == (51, 22)
    narrow = view.BoardFilter(start=date(2026, 12, 5), end=date(2026, 12, 5), region="440101")
    rows = view.overview(summary, narrow)["rows"]
    assert {(r["day"], r["region"]) for r in rows} == {("2026-12-05", "440101")}
    assert len(rows) == 2
    csv_lines = view.as_csv(summary, narrow).splitlines()
    assert csv_lines[0] == ",".join(view.CSV_FIELDS) and len(csv_lines) == 3
    assert narrow.query(page=2) == "from=2026-12-05&to=2026-12-05&region=440101&page=2"


def test_each_refused_filter_value_gets_a_sentence_and_filters_nothing() -> None:
    regions, clauses = view.choices(_summary())
    wanted, errors = view.parse_filter(
        {"from": "7/12/2026", "to": "2026-12-01", "region": "Zhengzhou", "clause": "x",
         "page": "-3"},
        regions=regions, clauses=clauses,
    )  # fmt: skip
    assert wanted == view.BoardFilter(end=date(2026, 12, 1))
    assert errors == [
        "“From” must be a date such as 2026-12-07, not “7/12/2026”.",
        "No colour change is recorded in a district with code “Zhengzhou”.",
        "No rule clause is named “x”.",
        "“Page” must be a whole number from 1, not “-3”.",
    ]
    swapped, errors = view.parse_filter(
        {"from": "2026-12-06", "to": "2026-12-02"}, regions=regions, clauses=clauses
    )
    assert (swapped.start, swapped.end) == (date(2026, 12, 2), date(2026, 12, 6))
    assert errors == ["“From” (06 Dec 2026) is after “To” (02 Dec 2026)."]
