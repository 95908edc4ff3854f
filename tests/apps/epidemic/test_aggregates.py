"""The ``aggregates`` query (counts of cases by disease, region and classification, rejected
reports left out) counts every case, past the 10,000 keys one range read returns, and
stays right as cases are confirmed, rejected, sent back and amended; counts below the
small-count threshold are suppressed where the caller may not see the cases."""

from __future__ import annotations

from collections import Counter
from typing import Any

from healthledger.apps.epidemic.contract import SMALL_COUNT
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.support import person, report, report_many, state_records, today

DOCTOR = "gz-first-hospital/dr-li"
SZ_LAB = "sz-peoples-hospital/lab-wu"
EPI = "gd-cdc/epi-wang"
OFFICER = "gd-commission/officer-chen"
PHARMACY = "yuexiu-pharmacy/pharm-xu"


def _counted(node: EmbeddedNode) -> dict[tuple[str, str, str], int]:
    """The counts recounted from every case record in the peer's state."""
    return dict(
        Counter(
            (c["disease"], c["region"], c["classification"])
            for c in state_records(node, "case/")
            if c["status"] != "rejected"
        )
    )


def _aggregates(node: EmbeddedNode, identity: str) -> dict[tuple[str, str, str], Any]:
    """The query's rows by cell: the count, or None where it is suppressed."""
    rows = node.query(identity, "epidemic", "aggregates", {})
    cells = {(r["disease"], r["region"], r["classification"]): r for r in rows}
    assert len(cells) == len(rows)
    assert all(("count" in r) != r.get("suppressed", False) for r in rows)
    return {cell: row.get("count") for cell, row in cells.items()}


def _amend(node: EmbeddedNode, case_id: str, classification: str, identity: str = DOCTOR) -> None:
    node.invoke(EPI, "epidemic", "request_info", {"case_id": case_id, "fields": ["classification"]})
    node.invoke(
        identity,
        "epidemic",
        "amend_case",
        {
            "case_id": case_id,
            "classification": classification,
            "onset_date": today(node) - 3,
            "diagnosis_date": today(node) - 1,
        },
    )


def test_every_case_is_counted_past_the_first_10000_case_keys(node: EmbeddedNode) -> None:
    batch = report_many(node, 10_000)
    report(node, patient=person(77), region="440106")
    records = state_records(node, "case/")
    assert len(records) == 10_001
    # The case last in key order (past the 10,000 keys one range returns) becomes the
    # only confirmed case: its cell is there only if it is counted.
    last = max(c["case_id"] for c in records)
    _amend(node, last, "confirmed")
    for case_id in [i for i in batch if i != last][:2]:
        node.invoke(EPI, "epidemic", "reject", {"case_id": case_id, "reason": "duplicate"})

    counted = _counted(node)
    assert sum(counted.values()) == 9_999
    region = next(c["region"] for c in records if c["case_id"] == last)
    assert counted[("influenza", region, "confirmed")] == 1
    assert _aggregates(node, OFFICER) == counted
    assert _aggregates(node, EPI) == counted
    # Outside reporting, every cell under the small-count threshold is suppressed.
    public = _aggregates(node, PHARMACY)
    assert public == {c: n if n >= SMALL_COUNT else None for c, n in counted.items()}
    assert public[("influenza", region, "confirmed")] is None
    assert (
        public[("influenza", "440104", "suspected")]
        == counted[("influenza", "440104", "suspected")]
    )


def test_counts_follow_confirm_reject_and_amend(node: EmbeddedNode) -> None:
    gz = [report(node, DOCTOR, person(10 + n))["case_id"] for n in range(3)]
    sz = report(node, SZ_LAB, person(20), region="440304")["case_id"]
    yuexiu, futian = ("influenza", "440104"), ("influenza", "440304")
    assert _aggregates(node, OFFICER) == {(*yuexiu, "suspected"): 3, (*futian, "suspected"): 1}

    node.invoke(EPI, "epidemic", "confirm", {"case_id": gz[0]})
    assert _aggregates(node, OFFICER) == {(*yuexiu, "suspected"): 3, (*futian, "suspected"): 1}
    node.invoke(EPI, "epidemic", "reject", {"case_id": gz[1], "reason": "not-a-case"})
    assert _aggregates(node, OFFICER) == {(*yuexiu, "suspected"): 2, (*futian, "suspected"): 1}
    node.invoke(EPI, "epidemic", "request_info", {"case_id": gz[2], "fields": ["region"]})
    assert _aggregates(node, OFFICER) == {(*yuexiu, "suspected"): 2, (*futian, "suspected"): 1}
    node.invoke(
        DOCTOR,
        "epidemic",
        "amend_case",
        {
            "case_id": gz[2],
            "classification": "probable",
            "onset_date": today(node) - 3,
            "diagnosis_date": today(node) - 1,
        },
    )
    _amend(node, sz, "confirmed", SZ_LAB)
    expected = {
        (*yuexiu, "suspected"): 1,
        (*yuexiu, "probable"): 1,
        (*futian, "confirmed"): 1,
    }
    assert _aggregates(node, OFFICER) == expected == _counted(node)
    node.invoke(EPI, "epidemic", "reject", {"case_id": sz, "reason": "wrong-disease"})
    del expected[(*futian, "confirmed")]
    assert _aggregates(node, OFFICER) == expected == _counted(node)

    # The viewer rules are those of cases: the Guangzhou hospital sees its own cells
    # whole, however small; another hospital's small cell is suppressed for it.
    node.invoke(EPI, "epidemic", "confirm", {"case_id": gz[2]})
    report(node, SZ_LAB, person(21), region="440304")
    assert _aggregates(node, DOCTOR) == {**expected, (*futian, "suspected"): None}
    assert _aggregates(node, SZ_LAB) == {
        (*yuexiu, "suspected"): None,
        (*yuexiu, "probable"): None,
        (*futian, "suspected"): 1,
    }
