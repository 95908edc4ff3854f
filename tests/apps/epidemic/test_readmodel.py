"""The DuckDB read model equals what the chain says, and rebuilds from it."""

from __future__ import annotations

from pathlib import Path

from healthledger.apps.epidemic.readmodel import CaseReadModel
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.support import person, report, today
from tests.support.seam import epidemic_seam

EPI = "gd-cdc/epi-wang"


def _traffic(node: EmbeddedNode) -> list[str]:
    now = today(node)
    ids = [
        report(node, "gz-first-hospital/dr-li", person(n), onset_date=now - 2 - n % 3)["case_id"]
        for n in range(6)
    ]
    ids += [
        report(node, "sz-peoples-hospital/lab-wu", person(10 + n), region="440304", disease="A90")[
            "case_id"
        ]
        for n in range(3)
    ]
    node.invoke(EPI, "epidemic", "confirm", {"case_id": ids[0]})
    node.invoke(EPI, "epidemic", "reject", {"case_id": ids[1], "reason": "not-a-case"})
    node.invoke(EPI, "epidemic", "request_info", {"case_id": ids[2], "fields": ["classification"]})
    node.invoke(
        "gz-first-hospital/dr-li",
        "epidemic",
        "amend_case",
        {
            "case_id": ids[2],
            "classification": "probable",
            "onset_date": now - 9,
            "diagnosis_date": now,
        },
    )
    return ids


def _from_chain(node: EmbeddedNode) -> list[dict[str, object]]:
    return list(node.query("gd-commission/officer-chen", "epidemic", "aggregates", {}))


def test_read_model_counts_equal_the_chain(node: EmbeddedNode) -> None:
    _traffic(node)
    model = CaseReadModel(epidemic_seam(node))
    assert model.catch_up() > 0
    assert model.counts() == _from_chain(node)
    cases = node.query(
        "gd-commission/officer-chen", "epidemic", "list_cases", {"disease": "influenza"}
    )
    expected: dict[int, int] = {}
    for case in cases:
        if case["status"] != "rejected":
            expected[case["onset"]] = expected.get(case["onset"], 0) + 1
    assert model.epidemic_curve("influenza") == sorted(expected.items())
    assert model.epidemic_curve("dengue", region="4401") == []
    assert sum(n for _, n in model.epidemic_curve("dengue", region="4403")) == 3


def test_read_model_follows_new_commits_and_rebuilds(node: EmbeddedNode, tmp_path: Path) -> None:
    ids = _traffic(node)
    path = tmp_path / "epidemic.duckdb"
    model = CaseReadModel(epidemic_seam(node), path)
    model.catch_up()
    first = model.counts()
    node.invoke(EPI, "epidemic", "reject", {"case_id": ids[3], "reason": "duplicate"})
    report(node, "gz-first-hospital/dr-li", person(30), disease="B05")
    assert model.catch_up() > 0
    assert model.counts() != first
    assert model.counts() == _from_chain(node)
    last = model.last_event
    model.close()
    reopened = CaseReadModel(epidemic_seam(node), path)
    assert reopened.last_event == last
    assert reopened.catch_up() == 0
    assert reopened.rebuild() > 0
    assert reopened.counts() == _from_chain(node)
    reopened.close()
