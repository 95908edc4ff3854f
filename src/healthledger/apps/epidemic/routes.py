"""API routes of the epidemic application, mounted at ``/api/v1/epidemic``.

Errors are the platform's (InvalidArguments and friends); the API maps them to
RFC 9457 problem details. These routes check and convert reports and list the
reference data; a report is then submitted like any other write, through
``POST /api/v1/invoke`` (or ``/proposals/endorse``) with the personal data in the
``transient`` object beside the signed proposal, bound by its ``transient_hash``.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from fastapi import APIRouter

from healthledger.apps.epidemic.diseases import NOTIFIABLE_DISEASES
from healthledger.apps.epidemic.figures_api import figures_router
from healthledger.apps.epidemic.intake import (
    Submission,
    from_fhir_bundle,
    from_form,
    from_immunization_bundle,
    from_lab_bundle,
)
from healthledger.apps.epidemic.observations import LAB_TESTS, VACCINES
from healthledger.node.seam import AppNode


class ReportCheck(pydantic.BaseModel):
    """A report to check: a FHIR R4 Bundle or the plain form."""

    model_config = pydantic.ConfigDict(extra="forbid")

    format: Literal["fhir", "form"]
    report: dict[str, Any]


def build_router(node: AppNode) -> APIRouter:
    """The router the API mounts under ``/api/v1/epidemic``."""
    router = APIRouter()
    router.include_router(figures_router(node))

    @router.get("/diseases", summary="Notifiable diseases and their ICD-10 codes")
    def diseases() -> list[dict[str, Any]]:
        """The notifiable diseases a case may be reported for."""
        return [
            {
                "id": d.id,
                "name": d.name,
                "law_class": d.law_class,
                "icd10": [low if low == high else f"{low}-{high}" for low, high in d.icd10],
            }
            for d in NOTIFIABLE_DISEASES
        ]

    @router.post("/reports/check", summary="Check and convert a case report")
    def check_report(body: ReportCheck) -> dict[str, Any]:
        """The ``report_case`` arguments a report becomes, and which personal fields
        will travel privately (names only, never values); problems name each field."""
        convert = from_fhir_bundle if body.format == "fhir" else from_form
        submission = convert(body.report)
        return {
            "contract": "epidemic",
            "function": "report_case",
            "args": submission.args,
            "private_fields": sorted(submission.transient["patient"]),
        }

    @router.get("/lab-tests", summary="Lab tests a result may be reported for (LOINC)")
    def lab_tests() -> list[dict[str, str]]:
        """The accepted LOINC test codes and the disease each is for."""
        return [{"loinc": t.code, "disease": t.disease, "name": t.name} for t in LAB_TESTS.values()]

    @router.get("/vaccines", summary="Vaccines a dose may be recorded for (CVX)")
    def vaccines() -> list[dict[str, str]]:
        """The accepted CVX vaccine codes and the disease each protects against."""
        return [{"cvx": v.code, "disease": v.disease, "name": v.name} for v in VACCINES.values()]

    @router.post("/lab-results/check", summary="Check and convert a FHIR lab result")
    def check_lab_result(bundle: dict[str, Any]) -> dict[str, Any]:
        """The ``report_lab_result`` call a Bundle (Patient + Observation) becomes;
        problems name each field."""
        return _described(from_lab_bundle(bundle))

    @router.post("/vaccinations/check", summary="Check and convert a FHIR immunization")
    def check_vaccination(bundle: dict[str, Any]) -> dict[str, Any]:
        """The ``record_vaccination`` call a Bundle (Patient + Immunization) becomes;
        problems name each field."""
        return _described(from_immunization_bundle(bundle))

    return router


def _described(submission: Submission) -> dict[str, Any]:
    return {
        "contract": "epidemic",
        "function": submission.function,
        "args": submission.args,
        "private_fields": sorted(submission.transient["patient"]),
    }
