"""Which epidemic contract call a report document becomes: a FHIR R4 Bundle holding
a Condition is a case report, one holding an Observation a lab result, one holding an
Immunization a vaccination; any other JSON object is read as the plain case form. A
Bundle of several records (the three doses of a SMART Health Card, a case and its lab
result) is one ``report_bundle`` call (:mod:`healthledger.apps.epidemic.fhir_bundle`)."""

from __future__ import annotations

from typing import Any

from healthledger.apps.epidemic.fhir_bundle import RECORDED, from_bundle
from healthledger.apps.epidemic.intake import (
    Submission,
    from_fhir_bundle,
    from_form,
    from_immunization_bundle,
    from_lab_bundle,
)
from healthledger.contracts.errors import InvalidArguments


def _types(bundle: dict[str, Any]) -> list[str]:
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return []
    return [
        str(e["resource"].get("resourceType"))
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]


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
    types = _types(document)
    if sum(kind in RECORDED for kind in types) > 1:
        several = from_bundle(document)
        return Submission(several.function, several.args, several.transient)
    kinds = set(types)
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
