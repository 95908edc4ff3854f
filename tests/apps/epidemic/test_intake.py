"""Reports as a FHIR R4 Bundle or a plain form become the same contract call."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from healthledger.apps.epidemic.intake import (
    ICD10_SYSTEM,
    ID_TYPE_SYSTEM,
    from_fhir_bundle,
    from_form,
)
from healthledger.contracts.errors import InvalidArguments
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.support import person, resident_id

PATIENT_URL = "urn:uuid:6f1c2a3e-0000-4000-8000-000000000001"
TODAY = datetime.datetime.now(datetime.UTC).date()
ONSET = (TODAY - datetime.timedelta(days=6)).isoformat()
RECORDED = (TODAY - datetime.timedelta(days=4)).isoformat()


def bundle(serial: int = 70) -> dict[str, Any]:
    """A well-formed FHIR R4 case-report Bundle."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": PATIENT_URL,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [
                        {
                            "type": {"coding": [{"system": ID_TYPE_SYSTEM, "code": "NI"}]},
                            "value": resident_id(serial),
                        }
                    ],
                    "name": [{"family": "Chen", "given": [f"Fhirname{serial}"]}],
                    "telecom": [{"system": "phone", "value": f"+86 139 0000 {serial:04d}"}],
                    "gender": "female",
                    "birthDate": "1985-03-12",
                    "address": [{"line": [f"{serial} Huanshi Road"], "district": "440104"}],
                },
            },
            {
                "fullUrl": "urn:uuid:6f1c2a3e-0000-4000-8000-000000000002",
                "resource": {
                    "resourceType": "Condition",
                    "subject": {"reference": PATIENT_URL},
                    "code": {"coding": [{"system": ICD10_SYSTEM, "code": "B05.9"}]},
                    "verificationStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                "code": "confirmed",
                            }
                        ]
                    },
                    "onsetDateTime": ONSET,
                    "recordedDate": f"{RECORDED}T09:30:00+08:00",
                },
            },
            {
                "fullUrl": "urn:uuid:6f1c2a3e-0000-4000-8000-000000000003",
                "resource": {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "AMB",
                    },
                    "subject": {"reference": PATIENT_URL},
                },
            },
        ],
    }


def test_a_bundle_maps_to_report_arguments() -> None:
    submission = from_fhir_bundle(bundle())
    assert submission.args == {
        "disease": "B05.9",
        "classification": "confirmed",
        "onset_date": ONSET,
        "diagnosis_date": RECORDED,
        "region": "440104",
    }
    patient = submission.transient["patient"]
    assert patient["name"] == "Fhirname70 Chen"
    assert patient["id_type"] == "NI"
    assert patient["id_number"] == resident_id(70)
    assert patient["phone"] == "+86 139 0000 0070"
    assert patient["address"] == "70 Huanshi Road"


def test_nulls_among_a_patients_name_and_address_lines_are_left_out() -> None:
    # fhir.resources accepts [null] in a list of strings; joining it raised a TypeError
    # (found by tests/vectors/test_decoder_properties.py).
    data = bundle()
    patient = data["entry"][0]["resource"]
    patient["name"][0]["given"] = [None, "Fhirname70"]
    patient["address"][0]["line"] = [None]
    submission = from_fhir_bundle(data)
    assert submission.transient["patient"]["name"] == "Fhirname70 Chen"
    assert "address" not in submission.transient["patient"]


def test_a_bundle_and_a_form_make_the_same_call(node: EmbeddedNode) -> None:
    form = from_form(
        {
            "disease": "B05.9",
            "classification": "confirmed",
            "onset_date": ONSET,
            "diagnosis_date": RECORDED,
            "region": "440104",
            "name": "Fhirname70 Chen",
            "id_number": resident_id(70),
            "phone": "+86 139 0000 0070",
            "address": "70 Huanshi Road",
            "sex": "female",
            "birth_date": "1985-03-12",
        }
    )
    fhir = from_fhir_bundle(bundle())
    assert form == fhir
    results = [
        node.invoke(
            "gz-first-hospital/dr-li", "epidemic", "report_case", s.args, transient=s.transient
        )[1]
        for s in (fhir, form)
    ]
    # The same person and disease reported twice: linked as a duplicate.
    assert results[1]["links"][0]["other_case_id"] == results[0]["case_id"]


def _fields(data: dict[str, Any], convert: Any = from_fhir_bundle) -> set[str]:
    with pytest.raises(InvalidArguments) as caught:
        convert(data)
    assert caught.value.errors
    return {e["field"] for e in caught.value.errors}


def test_fhir_schema_errors_name_the_field() -> None:
    data = bundle()
    data["entry"][0]["resource"]["birthDate"] = "12/03/1985"
    data["entry"][2]["resource"]["status"] = 7
    fields = _fields(data)
    assert "bundle.entry[0].resource.birthDate" in fields
    assert any(f.startswith("bundle.entry[2].resource") for f in fields)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (
            (1, "code"),
            {"coding": [{"system": "http://snomed.info/sct", "code": "14189004"}]},
            "bundle.entry[1].resource.code",
        ),
        ((1, "verificationStatus"), None, "bundle.entry[1].resource.verificationStatus"),
        ((1, "onsetDateTime"), None, "bundle.entry[1].resource.onsetDateTime"),
        ((1, "recordedDate"), None, "bundle.entry[1].resource.recordedDate"),
        ((1, "subject"), {"reference": "Patient/someone-else"}, "bundle.entry[1].resource.subject"),
        ((2, "subject"), None, "bundle.entry[2].resource.subject"),
        ((0, "name"), None, "bundle.entry[0].resource.name"),
    ],
)
def test_missing_or_wrong_case_fields_are_named(
    path: tuple[int, str], value: Any, field: str
) -> None:
    data = copy.deepcopy(bundle())
    index, key = path
    if value is None:
        del data["entry"][index]["resource"][key]
    else:
        data["entry"][index]["resource"][key] = value
    assert _fields(data) == {field}


def test_a_patient_without_a_district_is_left_to_the_contract_to_place() -> None:
    data = bundle()
    data["entry"][0]["resource"]["address"] = [{"line": ["1 Road"], "district": "Kings County"}]
    assert "region" not in from_fhir_bundle(data).args


def test_a_patient_is_known_by_identifier_else_by_name_and_birth_date() -> None:
    data = bundle()
    patient = data["entry"][0]["resource"]
    patient["identifier"] = [
        {
            "type": {"coding": [{"system": ID_TYPE_SYSTEM, "code": "MR"}]},
            "value": "MR-0070",
            "assigner": {"display": "Guangzhou First People's Hospital"},
        },
        {"system": "http://hl7.org/fhir/sid/passport-GBR", "value": "123456789"},
    ]
    person = from_fhir_bundle(data).transient["patient"]
    assert (person["id_type"], person["id_number"], person["country"]) == (
        "PPN",
        "123456789",
        "GBR",
    )
    patient["identifier"] = patient["identifier"][:1]
    person = from_fhir_bundle(data).transient["patient"]
    assert (person["id_type"], person["id_system"]) == (
        "MR",
        "assigner:Guangzhou First People's Hospital",
    )
    del patient["identifier"][0]["assigner"]  # an MR of no namespace: not an identifier
    assert "id_number" not in from_fhir_bundle(data).transient["patient"]
    del patient["birthDate"]
    assert _fields(data) == {"bundle.entry[0].resource.identifier"}


def test_a_bundle_without_an_encounter_or_with_two_patients_is_refused() -> None:
    data = bundle()
    data["entry"] = [data["entry"][0], data["entry"][0], data["entry"][1]]
    assert _fields(data) == {"bundle.entry[Patient]", "bundle.entry[Encounter]"}


def test_not_a_bundle_is_refused() -> None:
    assert _fields({"resourceType": "Patient"})


def test_form_errors_name_each_field() -> None:
    data = {"disease": "", "classification": "maybe", "region": "44", "name": "x", "id_number": "1"}
    assert _fields(data, from_form) >= {
        "form.disease",
        "form.classification",
        "form.region",
        "form.onset_date",
        "form.diagnosis_date",
    }


def test_form_keeps_personal_data_in_the_transient_map() -> None:
    submission = from_form(
        {
            "disease": "A15.0",
            "classification": "probable",
            "onset_date": "2026-11-01",
            "diagnosis_date": "2026-11-10",
            "region": "440106",
            **{k: v for k, v in person(80).items()},
        }
    )
    assert set(submission.args) == {
        "disease",
        "classification",
        "onset_date",
        "diagnosis_date",
        "region",
    }
    assert submission.transient["patient"]["id_number"] == person(80)["id_number"]
