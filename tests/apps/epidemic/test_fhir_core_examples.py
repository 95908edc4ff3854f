"""The FHIR R4 specification's own examples (npm package ``hl7.fhir.r4.examples``
4.0.1, pinned in tests/fhir_examples and installed by ``make fhir-examples``, read from
the installed package, never copied here) against the accepted profile: none of them
is a notifiable report as published, and each is refused naming the place of every
defect; fixed where the profile differs, the same resources are accepted.

(No package on PyPI or npm ships the HL7 eCR implementation guide's examples; the
eICR-style message test is in test_fhir_endpoint.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from healthledger.apps.epidemic.fhir_bundle import from_bundle, from_message
from healthledger.contracts.errors import InvalidArguments

PACKAGE = Path(__file__).resolve().parents[2] / "fhir_examples/node_modules/hl7.fhir.r4.examples"

pytestmark = pytest.mark.skipif(
    not (PACKAGE / "package.json").exists(),
    reason="the FHIR R4 examples are not installed: run make fhir-examples",
)


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PACKAGE / f"{name}.json").read_text())
    return data


def collection(*names: str) -> dict[str, Any]:
    """A collection Bundle of the named single-resource examples."""
    entries = []
    for name in names:
        resource = example(name)
        entries.append(
            {"fullUrl": f"{resource['resourceType']}/{resource['id']}", "resource": resource}
        )
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def defects(data: dict[str, Any], message: bool = False) -> set[str]:
    with pytest.raises(InvalidArguments) as refused:
        (from_message if message else from_bundle)(data)
    return {e["field"] for e in refused.value.errors}


def lab_defects(*entries: int, subject: bool) -> set[str]:
    """An Observation that is not an accepted test: code, result and specimen date."""
    paths = ["code", "valueCodeableConcept", "effective", *(["subject"] if subject else [])]
    return {f"Bundle.entry[{i}].resource.{p}" for i in entries for p in paths}


@pytest.mark.parametrize(
    ("names", "places"),
    [
        # an Australian vaccine code (AIR), not CVX
        (("Patient-example", "Immunization-example"), {"Bundle.entry[1].resource.vaccineCode"}),
        # a remembered dose: no CVX, and "January 2012" is an occurrenceString
        (
            ("Patient-example", "Immunization-historical"),
            {
                "Bundle.entry[1].resource.vaccineCode",
                "Bundle.entry[1].resource.occurrenceDateTime",
            },
        ),
        # CVX 104 (hepatitis A and B) protects against no notifiable disease here
        (("Patient-example", "Immunization-protocol"), {"Bundle.entry[1].resource.vaccineCode"}),
        # a body weight (vital signs) is left out, and then nothing is left to record
        (("Patient-example", "Observation-example"), {"Bundle.entry"}),
    ],
)
def test_single_resource_examples_are_refused_by_place(
    names: tuple[str, ...], places: set[str]
) -> None:
    assert defects(collection(*names)) == places


def test_example_bundles_are_refused_by_place() -> None:
    # Lipid results for a Patient not in the Bundle.
    assert defects(example("Bundle-lipids")) == lab_defects(1, 2, 3, 4, subject=True)
    # References by id, full URL and uuid resolve; those to another server do not.
    assert defects(example("Bundle-bundle-references")) == (
        {
            "Bundle.entry[0].resource.name",
            "Bundle.entry[1].resource.name",
            "Bundle.entry[1].resource.identifier",
        }
        | lab_defects(2, 3, 4, 6, subject=False)
        | lab_defects(5, 9, 10, subject=True)
    )
    # A transaction and messages of Patients only: nothing to record.
    assert defects(example("Bundle-bundle-transaction")) == {"Bundle.entry"}
    for name in ("Bundle-10bb101f-a121-4264-a920-67be9cb82c74", "Bundle-bundle-search-warning"):
        bundle = example(name)
        assert defects(bundle, message=bundle["type"] == "message") == (
            {"Bundle.entry"} if bundle["type"] == "message" else {"Bundle.type"}
        )


def test_the_example_patient_and_a_notifiable_vaccine_are_accepted() -> None:
    bundle = collection("Patient-example", "Immunization-protocol")
    coding = bundle["entry"][1]["resource"]["vaccineCode"]["coding"][0]
    coding["code"] = "141"  # seasonal influenza instead of hepatitis A and B
    submission = from_bundle(bundle)
    (dose,) = submission.args["doses"]
    assert (dose["vaccine"], dose["administered_date"], "region" in dose) == (
        "141",
        "2018-06-18",
        False,  # district "Rainbow" is not a GB/T 2260 code: residence unknown
    )
    (person,) = submission.transient["patients"]
    # The medical record number is pseudonymised by its system and value.
    assert (person["id_type"], person["id_system"], person["id_number"]) == (
        "MR",
        "urn:oid:1.2.36.146.595.217.0.1",
        "12345",
    )
    assert [n.location for n in submission.notes] == ["Bundle.entry[0].resource.address"]
