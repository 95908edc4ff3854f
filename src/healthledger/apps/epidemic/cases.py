"""Case reports and their review: the rules behind the contract's reporting and
review functions (see contract.py for the state keys)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from healthledger.apps.epidemic import pseudonym as pseudo
from healthledger.apps.epidemic.checks import (
    PATIENT_COLLECTION,
    FieldErrors,
    RegionCheck,
    check_dates,
    check_patient,
    date_field,
    patient_flags,
    placed,
    pseudonymisation_key,
    require_kind,
)
from healthledger.apps.epidemic.dates import day_of_ms
from healthledger.apps.epidemic.diseases import disease_for_icd10
from healthledger.apps.epidemic.status_index import record_status
from healthledger.apps.epidemic.visibility import region_contains
from healthledger.contracts.context import Context
from healthledger.contracts.errors import AccessDenied, Rejected

DUPLICATE_WINDOW_DAYS = 90
"""Two reports of one person and disease with onsets this close are one episode."""


def check_disease(code: str, problems: FieldErrors) -> tuple[str | None, str | None]:
    try:
        found = disease_for_icd10(code)
    except ValueError as exc:
        problems.add("disease", str(exc))
        return None, None
    return found.id, code.strip().upper()


@dataclass(frozen=True)
class Person:
    """A checked transient patient: the personal data and its normalised identifier."""

    patient: dict[str, str]
    identifier: str


def check_people(values: list[Any], field: str, problems: list[dict[str, str]]) -> list[Person]:
    """Each transient patient checked; problems named ``<field>[i].<name>``."""
    people = []
    for i, value in enumerate(values):
        found = FieldErrors("report")
        patient, identifier = check_patient(value, found)
        for error in found.errors:  # transient.patient.name -> <field>[i].name
            error["field"] = f"{field}[{i}]" + error["field"].removeprefix("transient.patient")
        problems += found.errors
        people.append(Person(patient, identifier))
    return people


@dataclass(frozen=True)
class CheckedCase:
    """A case report that passed its checks, ready to be written."""

    report: Any
    disease_id: str
    icd10: str
    onset: int
    diagnosis: int
    region: str
    flags: list[str]
    person: Person


def check_reports(
    ctx: Context, reports: list[Any], people: list[Person], prefix: str
) -> tuple[list[CheckedCase], list[dict[str, str]]]:
    """Each report checked against the chain (``prefix``: how its fields are named, with
    ``{i}`` for its index); the problems, each naming its field."""
    reporter = require_kind(ctx, "hospital")
    today = day_of_ms(ctx.timestamp)
    regions = RegionCheck(ctx)
    checked = []
    errors: list[dict[str, str]] = []
    for i, (report, person) in enumerate(zip(reports, people, strict=True)):
        problems = FieldErrors("report_case", prefix.format(i=i))
        disease_id, icd10 = check_disease(report["disease"], problems)
        onset, diagnosis = check_dates(
            report["onset_date"], report["diagnosis_date"], today, problems
        )
        region, flags = placed(report.get("region", ""), reporter, regions, problems)
        errors += problems.errors
        if not problems.errors:
            assert disease_id is not None and icd10 is not None
            assert onset is not None and diagnosis is not None
            flags += patient_flags(person.identifier)
            checked.append(
                CheckedCase(report, disease_id, icd10, onset, diagnosis, region, flags, person)
            )
    return checked, errors


def record_reports(
    ctx: Context, reports: list[Any], patients: list[Any], *, batch: bool
) -> list[dict[str, Any]]:
    """Check every report, then record them all (none if any is wrong). Organisation,
    key and regions are read once for the whole batch."""
    require_kind(ctx, "hospital")
    patient_errors: list[dict[str, str]] = []
    field = "transient.patients" if batch else "transient.patient"
    people = check_people(patients, field, patient_errors)
    if not batch:  # transient.patient[0].name -> transient.patient.name
        for error in patient_errors:
            error["field"] = error["field"].replace(f"{field}[0]", field, 1)
    checked, errors = check_reports(ctx, reports, people, "reports[{i}]." if batch else "")
    if errors or patient_errors:
        failed = FieldErrors("report_cases" if batch else "report_case")
        failed.errors = errors + patient_errors
        failed.raise_if_any()
    return write_reports(ctx, checked, suffixed=batch)


def write_reports(
    ctx: Context, checked: list[CheckedCase], *, suffixed: bool
) -> list[dict[str, Any]]:
    """Record checked reports (``suffixed``: case ids numbered within the transaction)."""
    key, key_version = pseudonymisation_key(ctx)
    today = day_of_ms(ctx.timestamp)
    results = []
    for i, case in enumerate(checked):
        pid = pseudo.pseudonym(key, case.person.identifier)
        case_id = f"c-{ctx.tx_id[:24]}" + (f"-{i}" if suffixed else "")
        links = link_reports(
            ctx, pid=pid, disease_id=case.disease_id, case_id=case_id, onset=case.onset
        )
        ctx.put_private(
            f"{ctx.caller.org}/{PATIENT_COLLECTION}", case_id, {**case.person.patient, "pid": pid}
        )
        record = {
            "case_id": case_id,
            "pid": pid,
            "pid_key_version": key_version,
            "disease": case.disease_id,
            "icd10": case.icd10,
            "classification": case.report["classification"],
            "onset": case.onset,
            "diagnosis": case.diagnosis,
            "region": case.region,
            "reporter_org": ctx.caller.org,
            "reporter": ctx.caller.id,
            "reported_at": ctx.timestamp,
            "status": "reported",
            "outcome": {"value": "under-treatment", "day": case.diagnosis},
            "timeliness": {"diagnosis_to_report_days": today - case.diagnosis},
        }
        if case.flags:
            record["flags"] = case.flags
        ctx.put(f"case/{case_id}", record)
        record_status(ctx, record, None)
        ctx.put(
            f"person/{pid}/{case.disease_id}/{case_id}",
            {"org": ctx.caller.org, "onset": case.onset},
        )
        ctx.emit("case_reported", public_event(record))
        for link in links:
            ctx.emit("duplicate_suspected" if link["kind"] == "duplicate" else "reinfection", link)
        results.append({"case_id": case_id, "links": links})
    return results


def link_reports(
    ctx: Context, *, pid: str, disease_id: str, case_id: str, onset: int
) -> list[dict[str, Any]]:
    """Link this report to earlier reports of the same person and disease."""
    links = []
    prefix = f"person/{pid}/{disease_id}/"
    for key, earlier in ctx.range(prefix, prefix[:-1] + "0"):
        other = key.rsplit("/", 1)[1]
        close = abs(earlier["onset"] - onset) <= DUPLICATE_WINDOW_DAYS
        link = {
            "kind": "duplicate" if close else "reinfection",
            "disease": disease_id,
            "case_id": case_id,
            "other_case_id": other,
            "other_org": earlier["org"],
            "org": ctx.caller.org,
        }
        ctx.put(f"link/{case_id}/{other}", link)
        ctx.put(f"link/{other}/{case_id}", link)
        links.append(link)
    return links


def public_event(record: dict[str, Any]) -> dict[str, Any]:
    """What a case event carries: no pseudonymous id, nothing personal."""
    keep = ("case_id", "disease", "classification", "onset", "diagnosis", "region", "status")
    return {k: record[k] for k in keep} | {"reporter_org": record["reporter_org"]}


def own_case(ctx: Context, case_id: str) -> dict[str, Any]:
    record = ctx.get(f"case/{case_id}")
    if not isinstance(record, dict) or record["reporter_org"] != ctx.caller.org:
        raise AccessDenied(f"no case {case_id} reported by {ctx.caller.org}")
    return record


def review(ctx: Context, case_id: str, decision: str, detail: dict[str, Any]) -> dict[str, Any]:
    reviewer = require_kind(ctx, "cdc")
    record = ctx.get(f"case/{case_id}")
    if not isinstance(record, dict) or not region_contains(
        ctx, reviewer["region"], record["region"]
    ):
        raise AccessDenied(f"case {case_id} is not in the area of {ctx.caller.org}")
    allowed = ("reported",) if decision == "info-requested" else ("reported", "info-requested")
    if record["status"] not in allowed:
        raise Rejected(f"case {case_id} is {record['status']}; cannot become {decision}")
    timeliness = dict(record["timeliness"])
    timeliness.setdefault("report_to_review_ms", ctx.timestamp - record["reported_at"])
    review = {"decision": decision, "by": ctx.caller.id, "at": ctx.timestamp, **detail}
    updated = {**record, "status": decision, "review": review, "timeliness": timeliness}
    ctx.put(f"case/{case_id}", updated)
    record_status(ctx, updated, record["status"])
    ctx.emit("case_reviewed", {"case_id": case_id, "status": decision, "region": record["region"]})
    return {"case_id": case_id, "status": decision, "timeliness": timeliness}


def record_outcome(ctx: Context, case_id: str, outcome: str, outcome_date: int | str) -> None:
    """The reporting hospital records the outcome of its case ``case_id`` (not rejected)."""
    record = own_case(ctx, case_id)
    if record["status"] == "rejected":
        raise Rejected(f"case {case_id} was rejected by the CDC")
    problems = FieldErrors("update_outcome")
    day = date_field(outcome_date, "outcome_date", problems)
    if day is not None:
        if day > day_of_ms(ctx.timestamp):
            problems.add("outcome_date", "is in the future")
        elif day < record["onset"]:
            problems.add("outcome_date", "is before onset")
    problems.raise_if_any()
    assert day is not None
    ctx.put(f"case/{case_id}", {**record, "outcome": {"value": outcome, "day": day}})
    ctx.emit("case_outcome", {"case_id": case_id, "outcome": outcome, "day": day})


def amend(
    ctx: Context,
    case_id: str,
    classification: str,
    onset_date: int | str,
    diagnosis_date: int | str,
) -> None:
    """The reporting hospital answers the CDC's request for information about its case
    ``case_id``: the case goes back to review, its index entry with it."""
    record = own_case(ctx, case_id)
    if record["status"] != "info-requested":
        raise Rejected(f"case {case_id} is {record['status']}; only info-requested is amended")
    problems = FieldErrors("amend_case")
    onset, diagnosis = check_dates(
        onset_date, diagnosis_date, day_of_ms(record["reported_at"]), problems
    )
    problems.raise_if_any()
    amended = {
        **record,
        "classification": classification,
        "onset": onset,
        "diagnosis": diagnosis,
        "status": "reported",
    }
    ctx.put(f"case/{case_id}", amended)
    record_status(ctx, amended, record["status"])
    ctx.emit("case_amended", public_event(amended))
