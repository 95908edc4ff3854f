"""FHIR as hospitals send it, through ``POST /fhir``, ``POST /fhir/$process-message`` and
``GET /fhir/metadata`` of a real console over a real node: the public SMART Health Cards
examples (read from ../shared/conformance, never copied), several records per Bundle in
one transaction, lab results without ``issued``, people without a district or an
identifier, and every refusal an OperationOutcome naming each defect's place."""

from __future__ import annotations

import copy
import datetime
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome

from healthledger.apps.epidemic.checks import KNOWN_BY_DEMOGRAPHICS, RESIDENCE_UNKNOWN
from healthledger.apps.epidemic.diseases import NOTIFIABLE_DISEASES
from healthledger.apps.epidemic.documents import submission_of
from healthledger.apps.epidemic.intake import ID_TYPE_SYSTEM
from healthledger.apps.epidemic.observations import LAB_TESTS, LOINC_SYSTEM, VACCINES
from healthledger.contracts.errors import AccessDenied, InvalidArguments
from healthledger.node.embedded import EmbeddedNode
from healthledger.web.console import create_console
from tests.support.seam import epidemic_seam

SHC = Path(__file__).resolve().parents[3].parent / "shared/conformance/credentials/shc"
EXAMPLES = SHC / "spec-examples"
NURSE = "gz-first-hospital/nurse-lin"
LAB = "gz-first-hospital/lab-huang"
EPI = "gd-cdc/epi-wang"
FHIR_JSON = "application/fhir+json"
TODAY = datetime.datetime.now(datetime.UTC).date()


def shc_bundle(number: str) -> dict[str, Any]:
    """The FHIR Bundle of SMART Health Cards example ``number`` (00, 01, 03)."""
    data: dict[str, Any] = json.loads(
        (EXAMPLES / f"example-{number}-a-fhirBundle.json").read_text()
    )
    return data


@pytest.fixture
def console(node: EmbeddedNode) -> Iterator[TestClient]:
    with TestClient(create_console(node), follow_redirects=False) as client:
        yield client


def log_in(client: TestClient, identity: str) -> None:
    client.cookies.clear()
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    answer = client.post("/login", data={"identity": identity, "csrf": token.group(1)})
    assert answer.status_code == 303


def outcome(answer: Any, status: int) -> list[dict[str, Any]]:
    """The issues of an OperationOutcome answered with ``status`` (checked against R4)."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == FHIR_JSON
    body = answer.json()
    OperationOutcome.model_validate(body)
    issues: list[dict[str, Any]] = body["issue"]
    return issues


def places(issues: list[dict[str, Any]], severity: str = "error") -> set[str]:
    return {i["expression"][0] for i in issues if i["severity"] == severity and "expression" in i}


def observations(node: EmbeddedNode, kind: str) -> list[dict[str, Any]]:
    found = node.query(EPI, "epidemic", "list_observations", {"kind": kind})
    assert isinstance(found, dict) and not found["next"]
    return list(found["observations"])


def test_the_smart_health_card_examples_are_recorded_once(
    node: EmbeddedNode, console: TestClient
) -> None:
    assert "example 00" in (EXAMPLES.parent.parent / "SOURCE.md").read_text()
    assert outcome(console.post("/fhir", json=shc_bundle("00")), 401)[0]["code"] == "login"
    log_in(console, NURSE)
    answer = console.post("/fhir", json=shc_bundle("00"))
    issues = outcome(answer, 200)
    assert answer.headers["location"].startswith("/api/v1/transactions/")
    recorded = places(issues, "information")
    assert recorded == {f"Bundle.entry[{i}].resource" for i in (1, 2, 3)}
    assert places(issues, "warning") == {
        "Bundle.entry[0].resource.address",
        "Bundle.entry[0].resource.identifier",
    }
    doses = sorted(observations(node, "vaccination"), key=lambda d: d["day"])
    assert [(d["vaccine"], d["dose_number"], d["lot"]) for d in doses] == [
        ("207", 1, "0000001"),
        ("207", 2, "0000007"),
        ("229", 3, "0000001"),
    ]
    hospital = epidemic_seam(node).get("org/gz-first-hospital")
    assert {d["region"] for d in doses} == {hospital["region"]}
    assert all(d["flags"] == [RESIDENCE_UNKNOWN, KNOWN_BY_DEMOGRAPHICS] for d in doses)
    assert len({d["pid"] for d in doses}) == 1  # one person, pseudonymised once
    assert len({d["vaccination_id"][:26] for d in doses}) == 1  # one transaction
    chain = b"".join(node.peer.store.block_bytes(h) for h in range(node.peer.store.height()))
    assert b"Anyperson" not in chain and b"1951-01-20" not in chain

    # Example 01 is the same person's same doses: refused whole, nothing stored twice.
    again = outcome(console.post("/fhir", json=shc_bundle("01")), 409)
    assert "already recorded" in again[0]["diagnostics"]
    assert len(observations(node, "vaccination")) == 3
    issues = outcome(console.post("/fhir", json=shc_bundle("03")), 200)
    assert len(places(issues, "information")) == 2
    assert len(observations(node, "vaccination")) == 5


def test_every_defect_is_named_by_its_place(node: EmbeddedNode, console: TestClient) -> None:
    log_in(console, NURSE)
    broken = shc_bundle("00")
    broken["entry"][1]["resource"]["status"] = "not-done"
    broken["entry"][2]["resource"]["vaccineCode"]["coding"][0]["system"] = "urn:local"
    broken["entry"][3]["resource"]["patient"]["reference"] = "resource:9"
    del broken["entry"][0]["resource"]["birthDate"]
    issues = outcome(console.post("/fhir", json=broken), 422)
    assert places(issues) == {
        "Bundle.entry[1].resource.status",
        "Bundle.entry[2].resource.vaccineCode",
        "Bundle.entry[3].resource.patient",
        "Bundle.entry[0].resource.identifier",
    }
    # A defect only the contract sees (a dose given tomorrow) is placed in the Bundle too.
    future = shc_bundle("03")
    future["entry"][2]["resource"]["occurrenceDateTime"] = str(TODAY + datetime.timedelta(2))
    issues = outcome(console.post("/fhir", json=future), 422)
    assert places(issues) == {"Bundle.entry[2].resource.occurrenceDateTime"}
    schema = shc_bundle("03")
    schema["entry"][0]["resource"]["birthDate"] = "20/04/1960"
    assert places(outcome(console.post("/fhir", json=schema), 422)) == {
        "Bundle.entry[0].resource.birthDate"
    }
    searchset = {**shc_bundle("03"), "type": "searchset"}
    assert places(outcome(console.post("/fhir", json=searchset), 422)) == {"Bundle.type"}
    garbage = console.post("/fhir", content=b"{not json", headers={"content-type": FHIR_JSON})
    assert outcome(garbage, 400)[0]["code"] == "structure"
    assert outcome(console.get("/fhir/Patient/1"), 404)[0]["code"] == "not-supported"
    # A lab may not record doses: refused by the contract, a 403.
    log_in(console, LAB)
    assert outcome(console.post("/fhir", json=shc_bundle("03")), 403)[0]["code"] == "forbidden"
    assert observations(node, "vaccination") == []


def lab_result(patient: str, code: str, day: datetime.date, **more: Any) -> dict[str, Any]:
    return {
        "resource": {
            "resourceType": "Observation",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "laboratory",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": LOINC_SYSTEM, "code": code}]},
            "subject": {"reference": patient},
            "interpretation": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                            "code": "POS",
                        }
                    ]
                }
            ],
            **more,
        }
    }


def test_a_lab_bundle_without_issued_or_district_and_a_medical_record_number(
    node: EmbeddedNode, console: TestClient
) -> None:
    specimen = TODAY - datetime.timedelta(days=2)
    patient = {
        "fullUrl": "urn:uuid:0b5c0000-0000-4000-8000-000000000001",
        "resource": {
            "resourceType": "Patient",
            "id": "p1",
            "identifier": [
                {
                    "type": {"coding": [{"system": ID_TYPE_SYSTEM, "code": "MR"}]},
                    "value": "MR-2026-0042",
                    "assigner": {"display": "Guangzhou First People's Hospital"},
                }
            ],
            "name": [{"family": "Labperson", "given": ["Mei"]}],
            "address": [{"city": "Guangzhou", "district": "Yuexiu"}],
        },
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            patient,
            lab_result("Patient/p1", "94500-6", specimen, effectiveDateTime=str(specimen)),
            lab_result(
                patient["fullUrl"],
                "92142-9",
                specimen,
                effectivePeriod={
                    "start": str(specimen),
                    "end": str(specimen + datetime.timedelta(1)),
                },
            ),
        ],
    }
    log_in(console, LAB)
    issues = outcome(console.post("/fhir", json=bundle), 200)
    assert places(issues, "warning") == {"Bundle.entry[0].resource.address"}
    labs = sorted(observations(node, "lab"), key=lambda r: r["test"])
    assert [(r["test"], r["result"]) for r in labs] == [
        ("92142-9", "positive"),
        ("94500-6", "positive"),
    ]
    assert [r["result_day"] - r["specimen_day"] for r in labs] == [1, 0]
    assert all(r["flags"] == [RESIDENCE_UNKNOWN] for r in labs)
    assert labs[0]["pid"] == labs[1]["pid"]
    # The same record number from another assigner is another person.
    other = copy.deepcopy(bundle)
    other["entry"][0]["resource"]["identifier"][0]["assigner"]["display"] = "Shenzhen Third"
    outcome(console.post("/fhir", json=other), 200)
    assert len({r["pid"] for r in observations(node, "lab")}) == 2


def test_an_eicr_style_message_is_processed(node: EmbeddedNode, console: TestClient) -> None:
    onset = TODAY - datetime.timedelta(days=5)
    patient_url = "urn:uuid:0b5c0000-0000-4000-8000-0000000000e1"
    document = {
        "resourceType": "Bundle",
        "type": "document",
        "entry": [
            {
                "resource": {
                    "resourceType": "Composition",
                    "status": "final",
                    "type": {"coding": [{"system": LOINC_SYSTEM, "code": "55751-2"}]},
                    "subject": {"reference": patient_url},
                    "date": str(TODAY),
                    "author": [{"display": "Guangzhou First People's Hospital"}],
                    "title": "Initial Public Health Case Report",
                }
            },
            {
                "fullUrl": patient_url,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [
                        {
                            "type": {"coding": [{"system": ID_TYPE_SYSTEM, "code": "PPN"}]},
                            "system": "http://hl7.org/fhir/sid/passport-GBR",
                            "value": "533380006",
                        }
                    ],
                    "name": [{"text": "Eicr Person"}],
                    "address": [{"district": "440106"}],
                },
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "subject": {"reference": patient_url},
                    "code": {
                        "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J10.1"}]
                    },
                    "verificationStatus": {"coding": [{"code": "confirmed"}]},
                    "onsetDateTime": str(onset),
                    "recordedDate": str(onset + datetime.timedelta(days=1)),
                }
            },
            lab_result(patient_url, "92142-9", onset, effectiveDateTime=str(onset)),
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "vital-signs",
                                }
                            ]
                        }
                    ],
                    "code": {"coding": [{"system": LOINC_SYSTEM, "code": "8310-5"}]},
                    "subject": {"reference": patient_url},
                    "effectiveDateTime": str(onset),
                }
            },
        ],
    }
    message = {
        "resourceType": "Bundle",
        "type": "message",
        "entry": [
            {
                "resource": {
                    "resourceType": "MessageHeader",
                    "eventCoding": {"code": "eicr-case-report-message"},
                    "source": {"endpoint": "urn:hospital"},
                    "focus": [{"reference": "urn:uuid:eicr-document"}],
                }
            },
            {"fullUrl": "urn:uuid:eicr-document", "resource": document},
        ],
    }
    log_in(console, "gz-first-hospital/dr-li")
    issues = outcome(console.post("/fhir/$process-message", json=message), 200)
    assert places(issues, "information") >= {
        "Bundle.entry[1].resource.entry[2].resource",
        "Bundle.entry[1].resource.entry[3].resource",
        "Bundle.entry[1].resource.entry[4].resource",  # vital signs: said to be left out
    }
    assert [r["region"] for r in observations(node, "lab")] == ["440106"]
    cases = node.query(EPI, "epidemic", "list_cases", {})
    assert [(c["disease"], c["region"], "flags" in c) for c in cases] == [
        ("influenza", "440106", False)
    ]
    not_a_message = outcome(console.post("/fhir/$process-message", json=document), 422)
    assert places(not_a_message) == {"Bundle.type"}


def test_metadata_is_a_capability_statement(console: TestClient) -> None:
    answer = console.get("/fhir/metadata")
    assert answer.status_code == 200 and answer.headers["content-type"] == FHIR_JSON
    statement = CapabilityStatement.model_validate(answer.json())
    assert statement.fhirVersion == "4.0.1"
    rest = statement.rest[0]
    assert [i.code for i in rest.interaction] == ["transaction"]
    assert [o.name for o in rest.operation] == ["process-message"]


def test_the_profile_page_lists_every_accepted_code() -> None:
    page = (Path(__file__).resolve().parents[3] / "docs/fhir-profile.md").read_text()
    rows = {line.split("|")[1].strip() for line in page.splitlines() if line.startswith("| ")}
    assert set(LAB_TESTS) <= rows and set(VACCINES) <= rows
    assert {d.name for d in NOTIFIABLE_DISEASES} <= rows
    for flag in (RESIDENCE_UNKNOWN, KNOWN_BY_DEMOGRAPHICS):
        assert f"| `{flag}` |" in page


def test_report_bundle_checks_roles_people_and_indexes(node: EmbeddedNode) -> None:
    today = str(TODAY)
    case = {"disease": "J10.1", "classification": "suspected", "onset_date": today}
    case |= {"diagnosis_date": today, "region": "440104", "patient": 0}
    dose = {"vaccine": "141", "dose_number": 1, "administered_date": today, "patient": 0}
    people = {"patients": [{"name": "Bundleperson", "birth_date": "1990-01-02"}]}
    with pytest.raises(AccessDenied, match="records doses only"):
        node.invoke(
            NURSE,
            "epidemic",
            "report_bundle",
            {"cases": [case], "labs": [], "doses": []},
            transient=people,
        )
    with pytest.raises(InvalidArguments) as refused:
        node.invoke(
            "gz-first-hospital/dr-li",
            "epidemic",
            "report_bundle",
            {"cases": [case], "labs": [], "doses": [{**dose, "patient": 3}]},
            transient={"patients": [{"birth_date": "1990-01-02"}]},
        )
    assert {e["field"] for e in refused.value.errors} == {
        "doses[0].patient",
        "transient.patients[0].name",
    }
    _, result = node.invoke(
        "gz-first-hospital/dr-li",
        "epidemic",
        "report_bundle",
        {"cases": [case], "labs": [], "doses": [dose]},
        transient=people,
    )
    assert result["cases"][0]["case_id"].endswith("-0")
    (recorded,) = observations(node, "vaccination")
    (reported,) = node.query(EPI, "epidemic", "list_cases", {})
    assert recorded["pid"] == reported["pid"]  # one person, named by index by both
    assert reported["flags"] == [KNOWN_BY_DEMOGRAPHICS] and recorded["flags"] == [
        RESIDENCE_UNKNOWN,
        KNOWN_BY_DEMOGRAPHICS,
    ]


def test_the_command_line_reads_a_bundle_of_several_records_whole() -> None:
    # What `healthledger epidemic report FILE` signs for a SMART Health Card's Bundle.
    submission = submission_of(shc_bundle("00"))
    assert submission.function == "report_bundle"
    assert [d["dose_number"] for d in submission.args["doses"]] == [1, 2, 3]
    assert submission.transient == {
        "patients": [{"name": "John B. Anyperson", "birth_date": "1951-01-20"}]
    }
