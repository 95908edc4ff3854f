"""Reporting: who may report, what is refused, and that a refusal stores nothing."""

from __future__ import annotations

from typing import Any

import pytest

from healthledger.apps.epidemic.dates import iso
from healthledger.contracts.errors import AccessDenied, InvalidArguments
from healthledger.ledger.errors import InvalidTransaction
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.support import case_args, person, report, today
from tests.support.seam import epidemic_seam


def _case_count(node: EmbeddedNode) -> int:
    return len(node.query("gd-commission/officer-chen", "epidemic", "list_cases", {}))


def test_a_doctor_reports_a_case(node: EmbeddedNode) -> None:
    result = report(node)
    case = node.query(
        "gz-first-hospital/dr-li", "epidemic", "get_case", {"case_id": result["case_id"]}
    )
    assert case["disease"] == "influenza"
    assert case["icd10"] == "J10.1"
    assert case["status"] == "reported"
    assert case["region"] == "440104"
    assert case["pid"].startswith("p1-")
    assert case["onset"] == today(node) - 3
    assert case["timeliness"] == {"diagnosis_to_report_days": 1}
    assert case["links"] == []


def test_a_lab_reports_and_the_hospital_reads_its_vault(node: EmbeddedNode) -> None:
    result = report(node, "sz-peoples-hospital/lab-wu", person(7), region="440304", disease="U07.1")
    stored = node.query(
        "sz-peoples-hospital/dr-zhang", "epidemic", "patient", {"case_id": result["case_id"]}
    )
    assert stored["name"] == person(7)["name"]
    assert stored["pid"].startswith("p1-")
    with pytest.raises(AccessDenied):
        node.query("gz-first-hospital/dr-li", "epidemic", "patient", {"case_id": result["case_id"]})


@pytest.mark.parametrize(
    "identity",
    [
        "gz-first-hospital/nurse-lin",  # a hospital, but not a reporting role
        "gd-cdc/epi-wang",  # reviews, does not report
        "gd-commission/officer-chen",
        "yuexiu-pharmacy/pharm-xu",
    ],
)
def test_non_reporting_roles_are_refused(node: EmbeddedNode, identity: str) -> None:
    height = node.peer.store.height()
    with pytest.raises(AccessDenied):
        report(node, identity)
    assert node.peer.store.height() == height


def test_a_doctor_of_an_unregistered_org_is_refused(bare_node: EmbeddedNode, regions: Any) -> None:
    from healthledger.apps.epidemic.provision import configure

    configure(epidemic_seam(bare_node), regions, orgs=[("gd-cdc", "cdc", "440000")])
    with pytest.raises(AccessDenied, match="not a registered reporting hospital"):
        report(bare_node)


def _refusal(
    node: EmbeddedNode, patient: dict[str, Any] | None = None, **overrides: Any
) -> InvalidArguments:
    height = node.peer.store.height()
    with pytest.raises(InvalidArguments) as caught:
        node.invoke(
            "gz-first-hospital/dr-li",
            "epidemic",
            "report_case",
            case_args(node, **overrides),
            transient={"patient": person(3) if patient is None else patient},
        )
    assert node.peer.store.height() == height, "a refused report must store nothing"
    assert _case_count(node) == 0
    return caught.value


def _fields(error: InvalidArguments) -> set[str]:
    return {e["field"] for e in error.errors}


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"disease": "Z99"}, {"disease"}),  # an ICD-10 code, not notifiable
        ({"disease": "flu"}, {"disease"}),  # not an ICD-10 code
        ({"region": "449999"}, {"region"}),
        ({"onset_date": "2026-02-30"}, {"onset_date"}),
        ({"onset_date": -5}, {"onset_date"}),
    ],
)
def test_unknown_codes_and_bad_dates_are_named(
    node: EmbeddedNode, overrides: dict[str, Any], fields: set[str]
) -> None:
    assert _fields(_refusal(node, **overrides)) == fields


def test_onset_after_diagnosis_is_refused(node: EmbeddedNode) -> None:
    now = today(node)
    error = _refusal(node, onset_date=now - 1, diagnosis_date=now - 2)
    assert error.errors == [{"field": "onset_date", "message": "is after the diagnosis date"}]


def test_future_dates_are_refused(node: EmbeddedNode) -> None:
    now = today(node)
    error = _refusal(node, onset_date=iso(now + 2), diagnosis_date=now + 3)
    assert _fields(error) == {"onset_date", "diagnosis_date"}
    assert all("future" in e["message"] for e in error.errors)


def test_every_bad_field_is_listed_at_once(node: EmbeddedNode) -> None:
    error = _refusal(node, disease="Q00", region="000000", onset_date="yesterday")
    assert _fields(error) == {"disease", "region", "onset_date"}


@pytest.mark.parametrize(
    ("patient", "field"),
    [
        ({k: v for k, v in person(3).items() if k != "name"}, "transient.patient.name"),
        ({**person(3), "id_number": "440104198503120011"}, "transient.patient.id_number"),
        ({**person(3), "id_type": "DL"}, "transient.patient.id_number"),
        ({**person(3), "religion": "x"}, "transient.patient.religion"),
        ({**person(3), "phone": 12345}, "transient.patient.phone"),
    ],
)
def test_bad_patient_data_is_named_without_echoing_it(
    node: EmbeddedNode, patient: dict[str, Any], field: str
) -> None:
    error = _refusal(node, patient=patient)
    assert field in _fields(error)
    assert patient["id_number"] not in str(error)


def test_a_missing_patient_is_refused(node: EmbeddedNode) -> None:
    height = node.peer.store.height()
    with pytest.raises(InvalidArguments, match=r"transient\.patient"):
        node.invoke("gz-first-hospital/dr-li", "epidemic", "report_case", case_args(node))
    assert node.peer.store.height() == height


def test_floats_and_unknown_arguments_are_refused_by_the_schema(node: EmbeddedNode) -> None:
    with pytest.raises(InvalidTransaction, match="floats"):
        report(node, onset_date=20000.5)
    with pytest.raises(InvalidArguments):
        report(node, onset_date=True)
    with pytest.raises(InvalidArguments):
        report(node, classification="likely")


def test_outcome_updates(node: EmbeddedNode) -> None:
    case_id = report(node)["case_id"]
    node.invoke(
        "gz-first-hospital/lab-huang",
        "epidemic",
        "update_outcome",
        {"case_id": case_id, "outcome": "recovered", "outcome_date": today(node)},
    )
    case = node.query("gz-first-hospital/dr-li", "epidemic", "get_case", {"case_id": case_id})
    assert case["outcome"] == {"value": "recovered", "day": today(node)}
    with pytest.raises(InvalidArguments, match="future"):
        node.invoke(
            "gz-first-hospital/dr-li",
            "epidemic",
            "update_outcome",
            {"case_id": case_id, "outcome": "died", "outcome_date": today(node) + 1},
        )
    with pytest.raises(AccessDenied):
        node.invoke(
            "sz-peoples-hospital/dr-zhang",
            "epidemic",
            "update_outcome",
            {"case_id": case_id, "outcome": "died", "outcome_date": today(node)},
        )
