"""The hospital's forms in the console (under ``/epidemic``): report a case (the plain
form, or a FHIR R4 Bundle through the same intake as the API), my reports and their
review, answer a request for information, post a lab result, record a vaccination.

Every write goes through the console's kit (``PageKit.write``): signed as the
logged-in person and sent through the API's own transactor, so a form and
``POST /api/v1/demo/invoke`` are one path to the ledger. A refusal comes back in
the contract's words and is shown beside the form, with the fields it names.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData, UploadFile

from healthledger.apps import PageKit, Person, Refusal, Written
from healthledger.apps.epidemic.intake import from_fhir_bundle, from_form
from healthledger.apps.epidemic.names import RegionNames, cvx_label, icd10_choices, loinc_label
from healthledger.apps.epidemic.observations import LAB_TESTS, VACCINES
from healthledger.apps.epidemic.review_pages import case_rows
from healthledger.contracts.errors import AccessDenied, ContractError, InvalidArguments
from healthledger.node.seam import AppNode

CONTRACT = "epidemic"
REPORTING_ROLES = ("doctor", "lab")
VACCINATING_ROLES = ("doctor", "nurse")
PATIENT_FIELDS = ("name", "id_type", "id_number", "country", "phone", "address", "sex")
MY_REPORTS_SHOWN = 50
"""How many reports the CDC asks about, and how many of the latest others, a hospital sees
at once."""
RECENT_SHOWN = 10
"""Lab results or doses shown under their form: the hospital's latest."""
MAX_BUNDLE_BYTES = 1_000_000
"""A FHIR Bundle upload larger than this is refused before it is read."""


def require_hospital(person: Person, roles: tuple[str, ...], what: str) -> None:
    """Refuse a page to anyone but these roles of a hospital (a 403 listing where they
    may go instead)."""
    if person.kind != "hospital" or person.role not in roles:
        allowed = " or ".join(roles)
        raise AccessDenied(
            f"{what} is for a {allowed} of a reporting hospital; you are a {person.role} "
            f"of {person.org_name}"
        )


def text_fields(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    """The named text fields of a posted form, stripped; empty ones left out."""
    out = {}
    for name in names:
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            out[name] = value.strip()
    return out


def patient_of(form: FormData) -> dict[str, str]:
    """The transient patient of a form (never on chain)."""
    patient = text_fields(form, PATIENT_FIELDS)
    patient.setdefault("id_type", "NI")
    birth = form.get("birth_date")
    if isinstance(birth, str) and birth.strip():
        patient["birth_date"] = birth.strip()
    return patient


def refused(exc: ContractError) -> Written:
    """A refusal met before anything was signed (the intake's checks)."""
    errors = tuple(getattr(exc, "errors", ()) or ())
    return Written(refusal=Refusal(422, "The report is not complete", str(exc), errors))


def build_reporting_pages(node: AppNode, kit: PageKit) -> APIRouter:
    """The hospital's pages."""
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

    def regions() -> RegionNames:
        return RegionNames(node)

    def show(
        request: Request,
        template: str,
        *,
        written: Written | None = None,
        values: dict[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        errors = written.refusal.field_errors() if written and written.refusal else {}
        status = written.refusal.status if written and written.refusal else 200
        return kit.render(
            request,
            template,
            status=status,
            written=written,
            values=values or {},
            errors=errors,
            regions=regions().choices(levels=("district", "city")),
            icd10=icd10_choices(),
            **context,
        )

    # --- case reports --------------------------------------------------------------

    @router.get("/report")
    def report_form(request: Request) -> HTMLResponse:
        """The case report form and the FHIR Bundle upload."""
        require_hospital(kit.person(request), REPORTING_ROLES, "Reporting a case")
        return show(request, "epidemic/report.html")

    @router.post("/report")
    async def report(request: Request) -> HTMLResponse:
        """Report a case from the form, through the intake the API uses."""
        person = kit.person(request)
        require_hospital(person, REPORTING_ROLES, "Reporting a case")
        form = await request.form()
        kit.check_csrf(request, str(form.get("csrf", "")))
        case_fields = ("disease", "classification", "onset_date", "diagnosis_date", "region")
        values = text_fields(form, case_fields)
        try:
            submission = from_form({**values, **patient_of(form)})
        except ContractError as exc:
            return show(request, "epidemic/report.html", written=refused(exc), values=values)
        written = await kit.write(
            request, CONTRACT, "report_case", submission.args, transient=submission.transient
        )
        return show(
            request, "epidemic/report.html", written=written, values={} if written.ok else values
        )

    @router.post("/report/fhir")
    async def report_fhir(request: Request) -> HTMLResponse:
        """Report a case from an uploaded FHIR R4 Bundle (Patient, Condition, Encounter)."""
        person = kit.person(request)
        require_hospital(person, REPORTING_ROLES, "Reporting a case")
        form = await request.form()
        kit.check_csrf(request, str(form.get("csrf", "")))
        upload = form.get("bundle")
        raw = await upload.read(MAX_BUNDLE_BYTES + 1) if isinstance(upload, UploadFile) else b""
        written: Written
        try:
            if not raw:
                raise_bundle("choose a FHIR Bundle file (JSON) to upload")
            if len(raw) > MAX_BUNDLE_BYTES:
                raise_bundle(f"the file is larger than {MAX_BUNDLE_BYTES // 1000} kB")
            try:
                data = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                raise_bundle("the file is not JSON: upload a FHIR R4 Bundle in JSON")
            if not isinstance(data, dict):
                raise_bundle("the file is not a FHIR Bundle (a JSON object)")
            submission = from_fhir_bundle(data)
        except ContractError as exc:
            written = refused(exc)
        else:
            written = await kit.write(
                request, CONTRACT, "report_case", submission.args, transient=submission.transient
            )
        return show(request, "epidemic/report.html", written=written, fhir=True)

    @router.get("/my-reports")
    async def my_reports(request: Request) -> HTMLResponse:
        """The hospital's reports, newest first, with the CDC's review of each."""
        person = kit.person(request)
        require_hospital(person, (*REPORTING_ROLES, "nurse", "admin"), "Your reports")
        return show(request, "epidemic/my_reports.html", **await mine(request))

    @router.post("/my-reports/{case_id}/amend")
    async def amend(request: Request, case_id: str) -> HTMLResponse:
        """Answer the CDC's request for information: the case goes back to review."""
        person = kit.person(request)
        require_hospital(person, REPORTING_ROLES, "Answering the CDC")
        form = await request.form()
        kit.check_csrf(request, str(form.get("csrf", "")))
        args: dict[str, Any] = {
            "case_id": case_id,
            **text_fields(form, ("classification", "onset_date", "diagnosis_date")),
        }
        written = await kit.write(request, CONTRACT, "amend_case", args)
        return show(
            request,
            "epidemic/my_reports.html",
            written=written,
            amended=case_id,
            **await mine(request),
        )

    # --- lab results and vaccinations ----------------------------------------------

    async def mine(request: Request) -> dict[str, Any]:
        """The reports the CDC asks about and the latest others, a page of each."""
        parts = []
        for statuses in (["info-requested"], ["reported", "confirmed", "rejected"]):
            args = {"statuses": statuses, "order": "newest-reported", "limit": MY_REPORTS_SHOWN}
            parts.append(await kit.ask(request, CONTRACT, "case_queue", args))
        asked, rest = parts
        return my_report_rows(
            case_rows(asked["cases"], regions(), newest_first=False),
            case_rows(rest["cases"], regions(), newest_first=False),
            asked_total=int(asked["total"]),
            rest_total=int(rest["total"]),
        )

    async def recent(request: Request, kind: str) -> list[dict[str, Any]]:
        """The hospital's latest lab results or doses, as people read them."""
        args = {"kind": kind, "limit": RECENT_SHOWN, "count": False}  # no total shown
        found = await kit.ask(request, CONTRACT, "list_observations", args)
        names = regions()
        rows = found["observations"]  # newest recorded first
        return [
            {
                **row,
                "what": loinc_label(str(row["test"]))
                if kind == "lab"
                else cvx_label(str(row["vaccine"])),
                "region_label": names.label(str(row["region"])),
            }
            for row in rows
        ]

    @router.get("/lab-result")
    async def lab_form(request: Request) -> HTMLResponse:
        """The lab result form."""
        require_hospital(kit.person(request), REPORTING_ROLES, "Posting a lab result")
        return show(
            request,
            "epidemic/lab_result.html",
            tests=_lab_choices(),
            recent=await recent(request, "lab"),
        )

    @router.post("/lab-result")
    async def lab_result(request: Request) -> HTMLResponse:
        """Post a test result (LOINC), the patient privately."""
        require_hospital(kit.person(request), REPORTING_ROLES, "Posting a lab result")
        form = await request.form()
        kit.check_csrf(request, str(form.get("csrf", "")))
        values = text_fields(
            form, ("test", "result", "specimen_date", "result_date", "region", "name")
        )
        args = {k: values.get(k, "") for k in ("test", "result", "specimen_date", "result_date")}
        if values.get("region"):
            args["region"] = values["region"]
        written = await kit.write(
            request, CONTRACT, "report_lab_result", args, transient={"patient": patient_of(form)}
        )
        return show(
            request,
            "epidemic/lab_result.html",
            written=written,
            values={} if written.ok else values,
            tests=_lab_choices(),
            recent=await recent(request, "lab"),
        )

    @router.get("/vaccination")
    async def vaccination_form(request: Request) -> HTMLResponse:
        """The vaccination form."""
        require_hospital(kit.person(request), VACCINATING_ROLES, "Recording a vaccination")
        return show(
            request,
            "epidemic/vaccination.html",
            vaccines=_vaccine_choices(),
            recent=await recent(request, "vaccination"),
        )

    @router.post("/vaccination")
    async def vaccination(request: Request) -> HTMLResponse:
        """Record a dose given (CVX), the patient privately."""
        require_hospital(kit.person(request), VACCINATING_ROLES, "Recording a vaccination")
        form = await request.form()
        kit.check_csrf(request, str(form.get("csrf", "")))
        values = text_fields(
            form, ("vaccine", "dose_number", "administered_date", "region", "lot", "name")
        )
        args: dict[str, Any] = {
            "vaccine": values.get("vaccine", ""),
            "dose_number": _whole(values.get("dose_number", "")),
            "administered_date": values.get("administered_date", ""),
        }
        for optional in ("region", "lot"):
            if values.get(optional):
                args[optional] = values[optional]
        written = await kit.write(
            request, CONTRACT, "record_vaccination", args, transient={"patient": patient_of(form)}
        )
        return show(
            request,
            "epidemic/vaccination.html",
            written=written,
            values={} if written.ok else values,
            vaccines=_vaccine_choices(),
            recent=await recent(request, "vaccination"),
        )

    return router


def my_report_rows(
    asked: list[dict[str, Any]],
    rest: list[dict[str, Any]],
    *,
    asked_total: int,
    rest_total: int,
) -> dict[str, Any]:
    """The page's list: the shown reports the CDC asks about first, then the shown latest
    others, with how many there are of each (a hospital may have hundreds waiting: the
    page shows a part of each and stays readable)."""
    return {
        "rows": asked + rest,
        "total": asked_total + rest_total,
        "asked_total": asked_total,
        "asked_shown": len(asked),
        "rest_total": rest_total,
        "rest_shown": len(rest),
    }


def raise_bundle(message: str) -> NoReturn:
    """Refuse an upload that is not a Bundle, naming the file field."""
    raise InvalidArguments(message, [{"field": "bundle", "message": message}])


def _whole(text: str) -> int:
    """A whole number typed in a form; 0 (which the contract refuses by name) otherwise."""
    return int(text) if text.isdigit() and len(text) < 6 else 0


def _lab_choices() -> list[tuple[str, str]]:
    return [(code, f"{t.name} (LOINC {code})") for code, t in LAB_TESTS.items()]


def _vaccine_choices() -> list[tuple[str, str]]:
    return [(code, f"{v.name} (CVX {code})") for code, v in VACCINES.items()]
