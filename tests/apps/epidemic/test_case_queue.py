"""Cases by status (``case_queue``, ``case_counts``, ``list_cases`` with a status): the
status is filtered before any limit and over every case (past the 10,000 a contract
reads in one range), a queue is paged with each case on one page only, in the order
asked, and the viewer rules are those of ``get_case``."""

from __future__ import annotations

from typing import Any

import pytest

from healthledger.apps.epidemic.dashboard import Dashboard, scope_of
from healthledger.apps.epidemic.provision import CONFIGURER
from healthledger.contracts.errors import AccessDenied, InvalidArguments
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.support import person, report, report_many, state_records, today
from tests.support.seam import epidemic_seam

DOCTOR = "gz-first-hospital/dr-li"
SZ_LAB = "sz-peoples-hospital/lab-wu"
EPI = "gd-cdc/epi-wang"
OFFICER = "gd-commission/officer-chen"


def _report_many(node: EmbeddedNode, count: int, *, first: int = 0) -> list[str]:
    """``count`` influenza reports of distinct people, in batches of 500; their ids."""
    return report_many(node, count, first=first)


def _state_cases(node: EmbeddedNode) -> list[dict[str, Any]]:
    """Every case record in the peer's state, read past the contract (in pages)."""
    return state_records(node, "case/")


def _queue(node: EmbeddedNode, identity: str, **args: Any) -> dict[str, Any]:
    found = node.query(identity, "epidemic", "case_queue", args)
    assert isinstance(found, dict)
    return found


def _all_pages(node: EmbeddedNode, identity: str, **args: Any) -> list[list[str]]:
    pages, after = [], ""
    while True:
        found = _queue(node, identity, **args, after=after)
        pages.append([c["case_id"] for c in found["cases"]])
        after = found["next"]
        if not after:
            return pages


def test_a_waiting_report_past_the_first_10000_cases_is_queued_and_counted(
    node: EmbeddedNode,
) -> None:
    batch = _report_many(node, 10_000)
    for case_id in batch[:3]:
        node.invoke(EPI, "epidemic", "confirm", {"case_id": case_id})
    latest = report(node, patient=person(77))["case_id"]
    records = _state_cases(node)
    states = [c["status"] for c in records]
    assert len(states) == 10_001
    expected = {s: states.count(s) for s in ("reported", "info-requested", "confirmed", "rejected")}
    assert node.query(EPI, "epidemic", "case_counts", {}) == expected
    # The last case in key order is past the 10,000 keys one range read returns.
    last = max(c["case_id"] for c in records)
    assert last not in batch[:3]

    reported = node.query(EPI, "epidemic", "list_cases", {"status": "reported", "limit": 10_000})
    assert all(c["status"] == "reported" for c in reported)
    assert len(reported) == expected["reported"] == 9_998
    assert {last, latest} <= {c["case_id"] for c in reported}
    confirmed = node.query(EPI, "epidemic", "list_cases", {"status": "confirmed", "limit": 2})
    assert [c["case_id"] for c in confirmed] == sorted(batch[:3])[:2]
    newest = _queue(node, EPI, statuses=["reported"], order="newest-reported", limit=1)
    assert [c["case_id"] for c in newest["cases"]] == [latest]
    assert newest["total"] == 9_998
    pages = _all_pages(node, EPI, statuses=["reported"], order="oldest-reported", limit=5000)
    assert [len(p) for p in pages] == [5000, 4998]
    assert last in pages[0] + pages[1]


def test_paging_returns_every_case_once_in_order_even_as_cases_are_reviewed(
    node: EmbeddedNode,
) -> None:
    ids = [report(node, patient=person(200 + n))["case_id"] for n in range(4)]
    ids += _report_many(node, 5, first=300)
    records = {c["case_id"]: c for c in _state_cases(node)}
    expected = sorted(ids, key=lambda i: (records[i]["reported_at"], i))

    pages = _all_pages(node, EPI, statuses=["reported"], order="oldest-reported", limit=2)
    assert [len(p) for p in pages] == [2, 2, 2, 2, 1]
    assert [i for p in pages for i in p] == expected
    first = _queue(node, EPI, statuses=["reported"], order="oldest-reported", limit=2)
    assert (first["total"], first["offset"]) == (9, 0)

    # Reviewing cases of the first page between pages skips nothing and repeats nothing.
    second = _queue(
        node, EPI, statuses=["reported"], order="oldest-reported", limit=2, after=first["next"]
    )
    assert second["offset"] == 2
    for case_id in expected[:3]:
        node.invoke(EPI, "epidemic", "confirm", {"case_id": case_id})
    third = _queue(
        node, EPI, statuses=["reported"], order="oldest-reported", limit=10, after=second["next"]
    )
    assert [c["case_id"] for c in third["cases"]] == expected[4:]
    assert (third["total"], third["offset"], third["next"]) == (6, 1, "")

    newest = _all_pages(node, EPI, statuses=["reported"], order="newest-reported", limit=4)
    assert [i for p in newest for i in p] == sorted(
        expected[3:], key=lambda i: (-records[i]["reported_at"], i)
    )


def test_decisions_come_newest_first_and_a_status_change_moves_the_case(
    node: EmbeddedNode,
) -> None:
    ids = [report(node, patient=person(400 + n))["case_id"] for n in range(4)]
    node.invoke(EPI, "epidemic", "confirm", {"case_id": ids[2]})
    node.invoke(EPI, "epidemic", "reject", {"case_id": ids[0], "reason": "duplicate"})
    node.invoke(EPI, "epidemic", "confirm", {"case_id": ids[1]})
    node.invoke(EPI, "epidemic", "request_info", {"case_id": ids[3], "fields": ["region"]})
    decided = _queue(
        node, EPI, statuses=["confirmed", "rejected"], order="newest-reviewed", limit=10
    )
    records = {c["case_id"]: c for c in _state_cases(node)}
    assert [c["case_id"] for c in decided["cases"]] == sorted(
        ids[:3], key=lambda i: (-records[i]["review"]["at"], i)
    )
    assert [(c["case_id"], c["status"]) for c in decided["cases"]] == [
        (i, records[i]["status"]) for i in (ids[1], ids[0], ids[2])
    ] or len({records[i]["review"]["at"] for i in ids[:3]}) < 3  # decided within one ms
    asked = _queue(node, EPI, statuses=["info-requested"], order="newest-reported", limit=10)
    assert [c["case_id"] for c in asked["cases"]] == [ids[3]]

    node.invoke(
        "gz-first-hospital/lab-huang",
        "epidemic",
        "amend_case",
        {
            "case_id": ids[3],
            "classification": "confirmed",
            "onset_date": today(node) - 4,
            "diagnosis_date": today(node) - 1,
        },
    )
    assert node.query(EPI, "epidemic", "case_counts", {}) == {
        "reported": 1,
        "info-requested": 0,
        "confirmed": 2,
        "rejected": 1,
    }
    # The homes count from the dashboard's read model: the same answer, for every viewer.
    seam = epidemic_seam(node)
    dashboard = Dashboard(seam)
    try:
        for identity in (EPI, DOCTOR, OFFICER):
            scope = scope_of(seam, identity)
            assert scope is not None
            contract = node.query(identity, "epidemic", "case_counts", {})
            assert dashboard.status_counts(scope) == {s: n for s, n in contract.items() if n}
    finally:
        dashboard.close()
    back = _queue(node, EPI, statuses=["reported"], order="oldest-reported", limit=10)
    assert [c["case_id"] for c in back["cases"]] == [ids[3]]
    assert back["cases"][0]["classification"] == "confirmed"


@pytest.mark.parametrize(
    ("identity", "sees"),
    [
        (DOCTOR, {"gz"}),
        (SZ_LAB, {"sz"}),
        (EPI, {"gz"}),  # the CDC serves Guangzhou only here
        (OFFICER, {"gz", "sz"}),
    ],
)
def test_the_viewer_rules_hold_in_the_queue_and_the_counts(
    node: EmbeddedNode, identity: str, sees: set[str]
) -> None:
    node.invoke(
        CONFIGURER, "epidemic", "register_org", {"org": "gd-cdc", "kind": "cdc", "region": "440100"}
    )
    cases = {
        "gz": report(node, DOCTOR, person(90))["case_id"],
        "sz": report(node, SZ_LAB, person(91), region="440304")["case_id"],
    }
    visible = {cases[name] for name in sees}
    listed = _all_pages(node, identity, statuses=["reported"], order="oldest-reported", limit=1)
    assert {i for p in listed for i in p} == visible
    assert node.query(identity, "epidemic", "case_counts", {})["reported"] == len(visible)

    _, grant = node.invoke(
        OFFICER,
        "epidemic",
        "grant_access",
        {
            "grantee": "gd-cdc",
            "regions": ["440300"],
            "until_date": today(node) + 7,
            "purpose": "cross-border-cluster",
        },
    )
    granted = _queue(node, identity, statuses=["reported"], order="oldest-reported", limit=10)
    with_grant = set(cases.values()) if identity == EPI else visible
    assert {c["case_id"] for c in granted["cases"]} == with_grant
    assert granted["total"] == len(with_grant)
    node.invoke(
        OFFICER, "epidemic", "revoke_grant", {"grantee": "gd-cdc", "grant_id": grant["grant_id"]}
    )
    revoked = _queue(node, identity, statuses=["reported"], order="oldest-reported", limit=10)
    assert {c["case_id"] for c in revoked["cases"]} == visible


def test_outside_reporting_aggregates_only_and_bad_arguments_are_named(
    node: EmbeddedNode,
) -> None:
    report(node)
    args = {"statuses": ["reported"], "order": "oldest-reported"}
    with pytest.raises(AccessDenied, match="aggregates only"):
        node.query("yuexiu-pharmacy/pharm-xu", "epidemic", "case_queue", args)
    with pytest.raises(AccessDenied, match="aggregates only"):
        node.query("gd-mpa/inspector-feng", "epidemic", "case_counts", {})
    with pytest.raises(InvalidArguments, match="not a position"):
        node.query(EPI, "epidemic", "case_queue", {**args, "after": "yesterday"})
    with pytest.raises(InvalidArguments, match="limit 0"):
        node.query(EPI, "epidemic", "case_queue", {**args, "limit": 0})
    with pytest.raises(InvalidArguments):
        node.query(EPI, "epidemic", "case_queue", {**args, "order": "random"})
    with pytest.raises(InvalidArguments):
        node.query(EPI, "epidemic", "case_queue", {**args, "statuses": ["closed"]})
