"""Which epidemic contract call a report document becomes: a FHIR R4 Bundle holding
a Condition is a case report, one holding an Observation a lab result, one holding an
Immunization a vaccination; any other JSON object is read as the plain case form."""

from __future__ import annotations

from typing import Any

from healthledger.apps.epidemic.intake import (
    Submission,
    from_fhir_bundle,
    from_form,
    from_immunization_bundle,
    from_lab_bundle,
)
from healthledger.contracts.errors import InvalidArguments


def _kinds(bundle: dict[str, Any]) -> set[str]:
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return set()
    return {
        str(e["resource"].get("resourceType"))
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    }


def submission_of(document: Any) -> Submission:
    """The call ``document`` becomes; InvalidArguments naming each defect."""
    if not isinstance(document, dict):
        raise InvalidArguments(
            "a report is a FHIR Bundle or a form, a JSON object",
            [{"field": "/", "message": "must be a JSON object"}],
        )
    if document.get("resourceType") != "Bundle":
        case = from_form(document)
        return Submission("report_case", case.args, case.transient)
    kinds = _kinds(document)
    if "Condition" in kinds:
        case = from_fhir_bundle(document)
        return Submission("report_case", case.args, case.transient)
    if "Observation" in kinds:
        return from_lab_bundle(document)
    if "Immunization" in kinds:
        return from_immunization_bundle(document)
    raise InvalidArguments(
        "the Bundle holds no Condition, Observation or Immunization to report",
        [{"field": "Bundle.entry", "message": "no Condition, Observation or Immunization"}],
    )
