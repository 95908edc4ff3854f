"""The FHIR interface (ARCHITECTURE.md section 7), beside the REST API:

* ``POST /fhir``: a transaction or collection Bundle, every record in it (case
  reports, lab results, doses) recorded in one transaction, all or nothing;
* ``POST /fhir/$process-message``: a message Bundle (an eICR-style report: a
  MessageHeader whose focus is the document);
* ``GET /fhir/metadata``: the CapabilityStatement.

Every answer is FHIR JSON (``application/fhir+json``): an ``OperationOutcome`` whose
issues name each defect's place as a FHIRPath-like ``expression``, with the HTTP
status the REST API gives the same refusal. A write is signed as the identity logged
in to the console, through the console's own write service (``PageKit.write``: the
key this node holds for that identity, the same service as ``POST /api/v1/demo/invoke``);
the profile accepted is docs/fhir-profile.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from healthledger.api.problems import problem_for
from healthledger.apps import PageKit, Refusal
from healthledger.apps.epidemic.fhir_bundle import BundleSubmission, from_bundle, from_message
from healthledger.contracts.errors import InvalidArguments

FHIR_MEDIA_TYPE = "application/fhir+json"
FHIR_VERSION = "4.0.1"
CONTRACT = "epidemic"
PROFILE_DATE = "2026-12-07"
"""When the accepted profile (docs/fhir-profile.md) last changed."""
ISSUE_CODES = {
    400: "structure",
    401: "login",
    403: "forbidden",
    404: "not-supported",
    409: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    503: "transient",
    504: "timeout",
}
"""The OperationOutcome issue type of each HTTP status (anything else: exception)."""


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome issue."""

    severity: str
    code: str
    diagnostics: str
    expression: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The issue as FHIR JSON."""
        body: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression is not None:
            body["expression"] = [self.expression]
        return body


def outcome(
    status: int, issues: Sequence[Issue], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """An OperationOutcome answer."""
    return JSONResponse(
        {"resourceType": "OperationOutcome", "issue": [i.to_json() for i in issues]},
        status_code=status,
        media_type=FHIR_MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def defects(exc: InvalidArguments) -> JSONResponse:
    """The 422 OperationOutcome of a Bundle's defects, each at its place."""
    found = problem_for(exc)
    issues = [Issue("error", "invalid", e["message"], _place(e["field"], None)) for e in exc.errors]
    return outcome(found.status, issues or [Issue("error", "invalid", found.detail)])


def refused(refusal: Refusal, submission: BundleSubmission) -> JSONResponse:
    """The OperationOutcome of a write refused by the ledger, with the status the REST
    API gives it; each argument it names placed back in the Bundle."""
    code = ISSUE_CODES.get(refusal.status, "exception")
    severity = "fatal" if refusal.status >= 500 else "error"
    issues = [
        Issue(
            severity,
            code,
            e.get("message", ""),
            _place(e.get("field", "").removeprefix("args."), submission),
        )
        for e in refusal.errors
    ]
    return outcome(refusal.status, issues or [Issue(severity, code, refusal.detail)])


def _place(name: str, submission: BundleSubmission | None) -> str:
    if name.startswith("Bundle"):
        return name
    if name.startswith("bundle"):
        return "B" + name[1:]
    return "Bundle" if submission is None else submission.locate(name)


def capability_statement() -> dict[str, Any]:
    """What this server does with FHIR, as a CapabilityStatement."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": PROFILE_DATE,
        "publisher": "healthledger",
        "kind": "instance",
        "software": {"name": "healthledger"},
        "implementation": {
            "description": (
                "Notifiable case reports, laboratory results and vaccinations recorded on a "
                "consortium ledger (personal data kept off chain); profile: "
                "docs/fhir-profile.md"
            ),
            "url": "/fhir",
        },
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_MEDIA_TYPE, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "POST a transaction or collection Bundle to /fhir; every Condition "
                    "(ICD-10), laboratory Observation (LOINC) and Immunization (CVX) in it "
                    "is recorded in one ledger transaction, all or nothing."
                ),
                "security": {
                    "description": (
                        "Writes are signed as the identity logged in to the console (a "
                        "session cookie); the node signs with the key it holds for it."
                    )
                },
                "interaction": [{"code": "transaction"}],
                "operation": [
                    {
                        "name": "process-message",
                        "definition": (
                            "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message"
                        ),
                    }
                ],
            }
        ],
    }


def fhir_router(kit: PageKit) -> APIRouter:
    """The ``/fhir`` routes, writing as the identity logged in to the console."""
    # Not in the OpenAPI document, whose errors are problem details: the FHIR interface
    # answers OperationOutcome and describes itself at /fhir/metadata.
    router = APIRouter(prefix="/fhir", tags=["fhir"], include_in_schema=False)

    @router.get("/metadata")
    def metadata() -> JSONResponse:
        """What this server accepts over FHIR."""
        return JSONResponse(capability_statement(), media_type=FHIR_MEDIA_TYPE)

    async def record(request: Request, read: Callable[[Any], BundleSubmission]) -> JSONResponse:
        if kit.identity(request) is None:
            return outcome(
                401, [Issue("error", "login", "log in to the console: writes are signed")]
            )
        try:
            data = json.loads(await request.body())
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            return outcome(400, [Issue("error", "structure", f"not JSON: {exc}")])
        try:
            submission = read(data)
        except InvalidArguments as exc:
            return defects(exc)
        written = await kit.write(
            request, CONTRACT, submission.function, submission.args, transient=submission.transient
        )
        if written.refusal is not None:
            return refused(written.refusal, submission)
        receipt, result = dict(written.receipt or {}), written.result
        tx_id = receipt["tx_id"]
        where = f"/api/v1/transactions/{tx_id}/receipt"
        issues = [
            Issue(
                "information",
                "informational",
                f"recorded in transaction {tx_id}, block {receipt['height']}; receipt at {where}",
            )
        ]
        for part, key in (("cases", "case_id"), ("labs", "lab_id"), ("doses", "vaccination_id")):
            for i, recorded in enumerate(result[part]):
                place = submission.sources[f"{part}[{i}]"]
                issues.append(Issue("information", "informational", recorded[key], place))
        issues += [
            Issue(n.severity, "informational", n.message, n.location) for n in submission.notes
        ]
        return outcome(200, issues, {"Location": where})

    @router.post("")
    async def transaction(request: Request) -> JSONResponse:
        """Every record of the Bundle in one ledger transaction, all or nothing."""
        return await record(request, from_bundle)

    @router.post("/$process-message")
    async def process_message(request: Request) -> JSONResponse:
        """A message Bundle: its MessageHeader first, the report its focus."""
        return await record(request, from_message)

    @router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def unsupported(rest: str) -> JSONResponse:
        """Anything else of FHIR's REST API."""
        return outcome(
            404,
            [
                Issue(
                    "error",
                    "not-supported",
                    f"/fhir/{rest} is not supported: POST /fhir, POST /fhir/$process-message "
                    "and GET /fhir/metadata are",
                )
            ],
        )

    return router
