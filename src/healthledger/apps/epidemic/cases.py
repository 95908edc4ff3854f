"""Case reports and their review: the rules behind the contract's reporting and
review functions (see contract.py for the state keys)."""

from __future__ import annotations

from typing import Any

from healthledger.apps.epidemic import pseudonym as pseudo
from healthledger.apps.epidemic.checks import (
    PATIENT_COLLECTION,
    FieldErrors,
    RegionCheck,
    check_dates,
    check_patient,
    pseudonymisation_key,
    require_kind,
)
from healthledger.apps.epidemic.dates import day_of_ms
from healthledger.apps.epidemic.diseases import disease_for_icd10
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


def record_reports(
    ctx: Context, reports: list[Any], patients: list[Any], *, batch: bool
) -> list[dict[str, Any]]:
    """Check every report, then record them all (none if any is wrong). Organisation,
    key and regions are read once for the whole batch."""
    require_kind(ctx, "hospital")
    today = day_of_ms(ctx.timestamp)
    regions = RegionCheck(ctx)
    checked = []
    all_problems: list[dict[str, str]] = []
    for i, (report, patient_value) in enumerate(zip(reports, patients, strict=True)):
        problems = FieldErrors("report_case", f"reports[{i}]." if batch else "")
        disease_id, icd10 = check_disease(report["disease"], problems)
        onset, diagnosis = check_dates(
            report["onset_date"], report["diagnosis_date"], today, problems
        )
        if not regions.known(report["region"]):
            problems.add("region", "unknown region code")
        patient_problems = FieldErrors("report_case")
        patient, identifier = check_patient(patient_value, patient_problems)
        if batch:  # transient.patient.name -> transient.patients[i].name
            for error in patient_problems.errors:
                rest = error["field"].removeprefix("transient.patient")
                error["field"] = f"transient.patients[{i}]{rest}"
        all_problems += problems.errors + patient_problems.errors
        checked.append((report, disease_id, icd10, onset, diagnosis, patient, identifier))
    if all_problems:
        failed = FieldErrors("report_cases" if batch else "report_case")
        failed.errors = all_problems
        failed.raise_if_any()
    key, key_version = pseudonymisation_key(ctx)
    results = []
    for i, (report, disease_id, icd10, onset, diagnosis, patient, identifier) in enumerate(checked):
        assert disease_id is not None and onset is not None and diagnosis is not None
        pid = pseudo.pseudonym(key, identifier)
        case_id = f"c-{ctx.tx_id[:24]}" + (f"-{i}" if batch else "")
        links = link_reports(ctx, pid=pid, disease_id=disease_id, case_id=case_id, onset=onset)
        ctx.put_private(f"{ctx.caller.org}/{PATIENT_COLLECTION}", case_id, {**patient, "pid": pid})
        record = {
            "case_id": case_id,
            "pid": pid,
            "pid_key_version": key_version,
            "disease": disease_id,
            "icd10": icd10,
            "classification": report["classification"],
            "onset": onset,
            "diagnosis": diagnosis,
            "region": report["region"],
            "reporter_org": ctx.caller.org,
            "reporter": ctx.caller.id,
            "reported_at": ctx.timestamp,
            "status": "reported",
            "outcome": {"value": "under-treatment", "day": diagnosis},
            "timeliness": {"diagnosis_to_report_days": today - diagnosis},
        }
        ctx.put(f"case/{case_id}", record)
        ctx.put(f"person/{pid}/{disease_id}/{case_id}", {"org": ctx.caller.org, "onset": onset})
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
    ctx.emit("case_reviewed", {"case_id": case_id, "status": decision, "region": record["region"]})
    return {"case_id": case_id, "status": decision, "timeliness": timeliness}
