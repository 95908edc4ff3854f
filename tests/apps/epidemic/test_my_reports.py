"""A hospital's list of its reports: the ones the CDC asks about first, then the latest
others, each part a page the contract cut (``case_queue``), with how many there are."""

from __future__ import annotations

from typing import Any

from healthledger.apps.epidemic.reporting_pages import my_report_rows


def _rows(prefix: str, count: int) -> list[dict[str, Any]]:
    return [{"case_id": f"{prefix}{i}"} for i in range(count)]


def test_hundreds_of_asked_reports_are_cut_like_the_others() -> None:
    mine = my_report_rows(_rows("a", 50), _rows("c", 50), asked_total=755, rest_total=2175)
    assert [r["case_id"] for r in mine["rows"][:2]] == ["a0", "a1"]
    assert len(mine["rows"]) == 100
    assert mine["rows"][50]["case_id"] == "c0"
    assert (mine["asked_total"], mine["asked_shown"]) == (755, 50)
    assert (mine["rest_total"], mine["rest_shown"], mine["total"]) == (2175, 50, 2930)


def test_a_short_list_is_shown_whole() -> None:
    mine = my_report_rows(_rows("a", 1), _rows("c", 3), asked_total=1, rest_total=3)
    assert [r["case_id"] for r in mine["rows"]] == ["a0", "c0", "c1", "c2"]
    assert (mine["asked_shown"], mine["rest_shown"]) == (1, 3)
