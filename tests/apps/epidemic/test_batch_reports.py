"""``report_cases``: a hospital uploads many reports in one transaction; each is
checked as a single report is, and one bad report refuses them all."""

from __future__ import annotations

from typing import Any

import pytest

from healthledger.contracts.errors import AccessDenied, InvalidArguments
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.support import case_args, person

DOCTOR = "gz-first-hospital/dr-li"


def _cases(node: EmbeddedNode) -> list[dict[str, Any]]:
    return [
        item.value for _, item in node.peer.store.range_state("epidemic", "case/", "case0", 1000)
    ]


def test_a_batch_records_every_report_with_its_own_patient(node: EmbeddedNode) -> None:
    reports = [case_args(node), case_args(node, region="440106"), case_args(node, disease="B05")]
    patients = [person(401), person(402), person(401)]
    _, results = node.invoke(
        DOCTOR, "epidemic", "report_cases", {"reports": reports}, transient={"patients": patients}
    )
    assert len(results) == 3 and len({r["case_id"] for r in results}) == 3
    cases = {c["case_id"]: c for c in _cases(node)}
    assert [cases[r["case_id"]]["region"] for r in results] == ["440104", "440106", "440104"]
    assert cases[results[0]["case_id"]]["pid"] == cases[results[2]["case_id"]]["pid"]
    assert cases[results[0]["case_id"]]["pid"] != cases[results[1]["case_id"]]["pid"]
    for result, patient in zip(results, patients, strict=True):
        stored = node.query(DOCTOR, "epidemic", "patient", {"case_id": result["case_id"]})
        assert stored["name"] == patient["name"]


def test_the_same_person_twice_in_one_batch_is_linked_as_a_duplicate(node: EmbeddedNode) -> None:
    reports = [case_args(node), case_args(node)]
    _, results = node.invoke(
        DOCTOR,
        "epidemic",
        "report_cases",
        {"reports": reports},
        transient={"patients": [person(403), person(403)]},
    )
    assert results[0]["links"] == []
    assert [link["kind"] for link in results[1]["links"]] == ["duplicate"]


def test_one_bad_report_refuses_the_whole_batch_naming_each_field(node: EmbeddedNode) -> None:
    height = node.peer.store.height()
    reports = [
        case_args(node),
        case_args(node, region="449999", onset_date="2999-01-01"),
        case_args(node, disease="Z99"),
    ]
    patients: list[Any] = [person(404), "not a patient", {"name": "No Id"}]
    with pytest.raises(InvalidArguments) as refused:
        node.invoke(
            DOCTOR,
            "epidemic",
            "report_cases",
            {"reports": reports},
            transient={"patients": patients},
        )
    fields = {e["field"] for e in refused.value.errors}
    assert {"reports[1].region", "reports[1].onset_date", "reports[2].disease"} <= fields
    assert {"transient.patients[1]", "transient.patients[2].id_number"} <= fields
    assert node.peer.store.height() == height and _cases(node) == []


def test_patients_must_match_the_reports_and_batches_have_a_size(node: EmbeddedNode) -> None:
    with pytest.raises(InvalidArguments, match="one patient per report"):
        node.invoke(
            DOCTOR,
            "epidemic",
            "report_cases",
            {"reports": [case_args(node)] * 2},
            transient={"patients": [person(406)]},
        )
    with pytest.raises(InvalidArguments, match="between 1 and 500"):
        node.invoke(DOCTOR, "epidemic", "report_cases", {"reports": []}, transient={"patients": []})
    with pytest.raises(AccessDenied):
        node.invoke(
            "gz-first-hospital/nurse-lin",
            "epidemic",
            "report_cases",
            {"reports": [case_args(node)]},
            transient={"patients": [person(407)]},
        )
