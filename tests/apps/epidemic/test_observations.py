"""Lab results (FHIR Observation, LOINC) and vaccinations (FHIR Immunization, CVX):
the privacy handling of case reports, refusals naming each field, the API checks."""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from healthledger.api.app import create_api
from healthledger.apps.epidemic.intake import (
    ID_TYPE_SYSTEM,
    from_immunization_bundle,
    from_lab_bundle,
)
from healthledger.apps.epidemic.observations import CVX_SYSTEM, LOINC_SYSTEM
from healthledger.contracts.errors import AccessDenied, InvalidArguments, Rejected
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.support import person, report, resident_id, today
from tests.support.members import member_reads

LAB = "gz-first-hospital/lab-huang"
NURSE = "gz-first-hospital/nurse-lin"
PATIENT_URL = "urn:uuid:7a1c2a3e-0000-4000-8000-000000000001"
TODAY = datetime.datetime.now(datetime.UTC).date()
SPECIMEN = (TODAY - datetime.timedelta(days=2)).isoformat()


def lab_args(node: EmbeddedNode, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "test": "94500-6",
        "result": "positive",
        "specimen_date": today(node) - 2,
        "result_date": today(node) - 1,
        "region": "440104",
    }
    return {**args, **overrides}


def dose_args(node: EmbeddedNode, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "vaccine": "510",
        "dose_number": 1,
        "administered_date": today(node) - 3,
        "region": "440106",
        "lot": "BJ-2021-07",
    }
    return {**args, **overrides}


def _listed(node: EmbeddedNode, identity: str, kind: str) -> list[dict[str, Any]]:
    """Every lab result or dose ``identity`` sees (one page of them)."""
    found = node.query(identity, "epidemic", "list_observations", {"kind": kind})
    assert not found["next"]
    return list(found["observations"])


def _chain_text(node: EmbeddedNode) -> str:
    texts = []
    for height in range(node.peer.store.height()):
        raw = node.peer.store.block_bytes(height)
        texts.append(raw.decode() + json.dumps(json.loads(raw), ensure_ascii=False))
    return "\n".join(texts)


def _ledger_bytes(node: EmbeddedNode) -> bytes:
    return b"".join(p.read_bytes() for p in Path(node.data_dir).glob("ledger.sqlite*"))


def test_a_lab_result_keeps_personal_data_off_chain_and_links_to_the_case(
    node: EmbeddedNode,
) -> None:
    patient = person(301)
    case = report(node, "gz-first-hospital/dr-li", patient)
    _, result = node.invoke(
        LAB, "epidemic", "report_lab_result", lab_args(node), transient={"patient": patient}
    )
    lab = node.peer.store.get_state("epidemic", f"lab/{result['lab_id']}")
    assert lab is not None
    record = lab.value
    assert record["disease"] == "covid-19" and record["result"] == "positive"
    case_record = node.peer.store.get_state("epidemic", f"case/{case['case_id']}")
    assert case_record is not None
    assert record["pid"] == case_record.value["pid"]  # one person, one pseudonymous id
    chain = _chain_text(node)
    stored = _ledger_bytes(node)
    for field in ("name", "id_number", "phone", "address"):
        assert patient[field] not in chain
        assert patient[field].encode() not in stored
    assert record["pid"] not in json.dumps(
        [e.data for e in node.peer.events.read(None, limit=10_000) if e.kind == "contract"]
    )


def test_a_vaccination_is_recorded_once_per_person_vaccine_and_dose(node: EmbeddedNode) -> None:
    patient = person(302)
    node.invoke(
        NURSE, "epidemic", "record_vaccination", dose_args(node), transient={"patient": patient}
    )
    with pytest.raises(Rejected, match="already recorded"):
        node.invoke(
            "gz-first-hospital/dr-li",
            "epidemic",
            "record_vaccination",
            dose_args(node),
            transient={"patient": patient},
        )
    node.invoke(
        NURSE,
        "epidemic",
        "record_vaccination",
        dose_args(node, dose_number=2),
        transient={"patient": patient},
    )
    doses = _listed(node, "gd-cdc/epi-wang", "vaccination")
    assert sorted(d["dose_number"] for d in doses) == [1, 2]
    assert {d["disease"] for d in doses} == {"covid-19"}
    assert patient["name"] not in _chain_text(node)


def test_observations_are_read_by_id_as_the_caller_may_see_them(node: EmbeddedNode) -> None:
    """``get_observations`` reads each id by its key, in order, wherever it sorts among
    every recorded one: None for an unknown id or one the caller may not see."""
    receipt, _ = node.invoke(
        NURSE, "epidemic", "record_vaccination", dose_args(node), transient={"patient": person(303)}
    )
    recorded = _listed(node, NURSE, "vaccination")
    dose_id = recorded[0]["vaccination_id"]
    args = {"kind": "vaccination", "ids": ["nope", dose_id, ""]}
    assert node.query(NURSE, "epidemic", "get_observations", args) == [None, recorded[0], None]
    assert node.query("gd-cdc/epi-wang", "epidemic", "get_observations", args)[1] == recorded[0]
    other = node.query("sz-peoples-hospital/dr-zhang", "epidemic", "get_observations", args)
    assert other == [None, None, None]  # another hospital's dose is not theirs to see
    lab = node.query(NURSE, "epidemic", "get_observations", {"kind": "lab", "ids": [dose_id]})
    assert lab == [None]
    with pytest.raises(InvalidArguments, match="at most 1000"):
        node.query(NURSE, "epidemic", "get_observations", {"kind": "lab", "ids": ["x"] * 1001})
    assert receipt.code.name == "VALID"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"test": "12345-6"}, "test"),
        ({"specimen_date": "2999-01-01"}, "specimen_date"),
        ({"result_date": "yesterday"}, "result_date"),
        ({"region": "449999"}, "region"),
    ],
)
def test_a_bad_lab_result_is_refused_naming_the_field(
    node: EmbeddedNode, overrides: dict[str, Any], field: str
) -> None:
    height = node.peer.store.height()
    with pytest.raises(InvalidArguments) as refused:
        node.invoke(
            LAB,
            "epidemic",
            "report_lab_result",
            lab_args(node, **overrides),
            transient={"patient": person(303)},
        )
    assert field in {e["field"] for e in refused.value.errors}
    assert node.peer.store.height() == height  # nothing stored


def test_specimen_after_result_and_a_missing_patient_are_named_together(
    node: EmbeddedNode,
) -> None:
    with pytest.raises(InvalidArguments) as refused:
        args = lab_args(node, specimen_date=today(node), result_date=today(node) - 3)
        node.invoke(LAB, "epidemic", "report_lab_result", args)
    fields = {e["field"] for e in refused.value.errors}
    assert fields == {"specimen_date", "transient.patient"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"vaccine": "999"}, "vaccine"),
        ({"dose_number": 0}, "dose_number"),
        ({"administered_date": "2999-01-01"}, "administered_date"),
        ({"lot": "lot with spaces"}, "lot"),
        ({"region": "449999"}, "region"),
    ],
)
def test_a_bad_vaccination_is_refused_naming_the_field(
    node: EmbeddedNode, overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidArguments) as refused:
        node.invoke(
            NURSE,
            "epidemic",
            "record_vaccination",
            dose_args(node, **overrides),
            transient={"patient": person(304)},
        )
    assert field in {e["field"] for e in refused.value.errors}


def test_only_hospital_staff_in_their_roles_report_results_and_doses(node: EmbeddedNode) -> None:
    patient = {"patient": person(305)}
    with pytest.raises(AccessDenied):  # a nurse does not report lab results
        node.invoke(NURSE, "epidemic", "report_lab_result", lab_args(node), transient=patient)
    with pytest.raises(AccessDenied):  # a lab does not vaccinate
        node.invoke(LAB, "epidemic", "record_vaccination", dose_args(node), transient=patient)
    with pytest.raises(AccessDenied):  # a pharmacy takes no part in reporting
        node.invoke(
            "yuexiu-pharmacy/pharm-xu",
            "epidemic",
            "report_lab_result",
            lab_args(node),
            transient=patient,
        )


def lab_bundle(serial: int = 80) -> dict[str, Any]:
    """A well-formed FHIR R4 Bundle of a Patient and a lab Observation."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": PATIENT_URL, "resource": _patient(serial)},
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": LOINC_SYSTEM, "code": "94500-6"}]},
                    "subject": {"reference": PATIENT_URL},
                    "effectiveDateTime": SPECIMEN,
                    "issued": f"{TODAY.isoformat()}T08:00:00+08:00",
                    "valueCodeableConcept": {
                        "coding": [{"system": "http://snomed.info/sct", "code": "260415000"}]
                    },
                }
            },
        ],
    }


def immunization_bundle(serial: int = 81) -> dict[str, Any]:
    """A well-formed FHIR R4 Bundle of a Patient and an Immunization."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": PATIENT_URL, "resource": _patient(serial)},
            {
                "resource": {
                    "resourceType": "Immunization",
                    "status": "completed",
                    "vaccineCode": {"coding": [{"system": CVX_SYSTEM, "code": "511"}]},
                    "patient": {"reference": PATIENT_URL},
                    "occurrenceDateTime": SPECIMEN,
                    "lotNumber": "SV-22-04",
                    "protocolApplied": [{"doseNumberPositiveInt": 2}],
                }
            },
        ],
    }


def _patient(serial: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [
            {
                "type": {"coding": [{"system": ID_TYPE_SYSTEM, "code": "NI"}]},
                "value": resident_id(serial),
            }
        ],
        "name": [{"family": "Lin", "given": [f"Fhirlab{serial}"]}],
        "address": [{"line": [f"{serial} Binjiang Road"], "district": "440104"}],
    }


def test_fhir_observation_and_immunization_become_contract_calls(node: EmbeddedNode) -> None:
    lab = from_lab_bundle(lab_bundle())
    assert lab.function == "report_lab_result"
    assert lab.args == {
        "test": "94500-6",
        "result": "negative",
        "specimen_date": SPECIMEN,
        "result_date": TODAY.isoformat(),
        "region": "440104",
    }
    assert lab.transient["patient"]["name"] == "Fhirlab80 Lin"
    node.invoke(LAB, "epidemic", lab.function, lab.args, transient=lab.transient)
    dose = from_immunization_bundle(immunization_bundle())
    assert dose.args == {
        "vaccine": "511",
        "administered_date": SPECIMEN,
        "dose_number": 2,
        "lot": "SV-22-04",
        "region": "440104",
    }
    node.invoke(NURSE, "epidemic", dose.function, dose.args, transient=dose.transient)
    listed = _listed(node, "gd-cdc/epi-wang", "lab")
    assert [r["test"] for r in listed] == ["94500-6"]


def test_malformed_observation_and_immunization_name_each_field() -> None:
    data = lab_bundle()
    observation = data["entry"][1]["resource"]
    observation["status"] = "preliminary"
    observation["code"]["coding"][0]["system"] = "http://example.org/local"
    del observation["valueCodeableConcept"]
    del observation["issued"]
    with pytest.raises(InvalidArguments) as refused:
        from_lab_bundle(data)
    assert {e["field"] for e in refused.value.errors} == {
        "bundle.entry[1].resource.status",
        "bundle.entry[1].resource.code",
        "bundle.entry[1].resource.valueCodeableConcept",
    }  # without issued, the result date is the effective date
    data = immunization_bundle()
    immunization = data["entry"][1]["resource"]
    immunization["status"] = "not-done"
    immunization["patient"]["reference"] = "Patient/someone-else"
    data["entry"][0]["resource"]["address"] = []
    with pytest.raises(InvalidArguments) as refused:
        from_immunization_bundle(data)
    assert {e["field"] for e in refused.value.errors} == {
        "bundle.entry[1].resource.status",
        "bundle.entry[1].resource.patient",
    }  # without a district, the contract places the dose at the reporter's region
    broken = copy.deepcopy(lab_bundle())
    broken["entry"][1]["resource"]["effectiveDateTime"] = "not a date"
    with pytest.raises(InvalidArguments, match=r"bundle\.entry\[1\]"):
        from_lab_bundle(broken)


@pytest.fixture
def client(bare_node: EmbeddedNode) -> Iterator[TestClient]:
    with TestClient(create_api(bare_node), raise_server_exceptions=False) as c:
        c.auth = member_reads(bare_node)
        yield c


def test_the_api_checks_bundles_and_answers_problems(client: TestClient) -> None:
    response = client.post("/api/v1/epidemic/lab-results/check", json=lab_bundle())
    assert response.status_code == 200
    assert response.json()["function"] == "report_lab_result"
    assert "Fhirlab" not in response.text  # personal data never echoed
    response = client.post("/api/v1/epidemic/vaccinations/check", json=immunization_bundle())
    assert response.status_code == 200 and response.json()["args"]["vaccine"] == "511"
    bad = immunization_bundle()
    bad["entry"][1]["resource"]["vaccineCode"]["coding"] = []
    response = client.post("/api/v1/epidemic/vaccinations/check", json=bad)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "bundle.entry[1].resource.vaccineCode" in response.text
    tests = client.get("/api/v1/epidemic/lab-tests").json()
    assert {"loinc": "94500-6", "disease": "covid-19"}.items() <= tests[0].items()
    assert any(v["cvx"] == "510" for v in client.get("/api/v1/epidemic/vaccines").json())
