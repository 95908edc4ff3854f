"""Lab results and vaccinations, with the privacy handling of case reports: personal
data only in the transient map, kept in the reporting organisation's vault; the chain
gets the pseudonymous patient id (the same as on the person's case reports, so a test
result or a dose links to the cases) and no personal data.

Codes accepted (a stated list, not a terminology server):

* tests, LOINC (https://loinc.org; SARS-CoV-2 codes from the CDC's LIVD mapping):
  ``LAB_TESTS``;
* vaccines, CDC CVX (https://www2.cdc.gov/vaccines/iis/iisstandards/vaccines.asp):
  ``VACCINES``; CVX 510 and 511 are the Sinopharm (BIBP) and Sinovac (CoronaVac)
  inactivated COVID-19 vaccines.

State keys::

    lab/<lab_id>                       a test result
    vaccination/<vaccination_id>       a dose given
    dose/<pid>/<cvx>/<dose_number>     index: one record per person, vaccine and dose

Vaccinations given through the supply application (its ``vaccine_administered``
event) are linked by the monitoring read model from the event stream and never
recorded here a second time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from healthledger.apps.epidemic import pseudonym as pseudo
from healthledger.apps.epidemic.checks import (
    PATIENT_COLLECTION,
    FieldErrors,
    RegionCheck,
    check_day_order,
    check_patient,
    date_field,
    pseudonymisation_key,
    require_kind,
)
from healthledger.apps.epidemic.dates import day_of_ms
from healthledger.contracts.context import Context
from healthledger.contracts.errors import Rejected

TestResult = Literal["positive", "negative", "inconclusive"]
LOINC_SYSTEM = "http://loinc.org"
CVX_SYSTEM = "http://hl7.org/fhir/sid/cvx"


@dataclass(frozen=True)
class CodedItem:
    """A lab test or vaccine code and the notifiable disease it is for."""

    code: str
    disease: str
    name: str


LAB_TESTS: dict[str, CodedItem] = {
    item.code: item
    for item in (
        CodedItem("94500-6", "covid-19", "SARS-CoV-2 RNA, respiratory specimen, NAA (PCR)"),
        CodedItem("94309-2", "covid-19", "SARS-CoV-2 RNA, specimen, NAA (PCR)"),
        CodedItem("94558-4", "covid-19", "SARS-CoV-2 Ag, respiratory specimen, rapid test"),
        CodedItem("92142-9", "influenza", "Influenza A RNA, respiratory specimen, NAA"),
        CodedItem("92141-1", "influenza", "Influenza B RNA, respiratory specimen, NAA"),
        CodedItem("80382-5", "influenza", "Influenza A Ag, upper respiratory, rapid test"),
        CodedItem("80383-3", "influenza", "Influenza B Ag, upper respiratory, rapid test"),
    )
}
"""LOINC codes of the tests a lab may report."""

VACCINES: dict[str, CodedItem] = {
    item.code: item
    for item in (
        CodedItem("207", "covid-19", "COVID-19, mRNA, LNP-S, PF, 100 mcg/0.5 mL"),
        CodedItem("208", "covid-19", "COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL"),
        CodedItem("510", "covid-19", "COVID-19 inactivated, BIBP (Sinopharm)"),
        CodedItem("511", "covid-19", "COVID-19 inactivated, CoronaVac (Sinovac)"),
        CodedItem("88", "influenza", "Influenza, unspecified formulation"),
        CodedItem("141", "influenza", "Influenza, seasonal, injectable"),
        CodedItem("150", "influenza", "Influenza, injectable, quadrivalent, preservative free"),
        CodedItem("03", "measles", "MMR (measles, mumps, rubella)"),
        CodedItem("05", "measles", "Measles"),
    )
}
"""CVX codes of the vaccines a dose may be recorded for."""

VACCINATING_ROLES = ("doctor", "nurse")
MAX_DOSE = 10
LOT_PATTERN = r"^[A-Za-z0-9-]{0,20}$"


def _new_patient(ctx: Context, problems: FieldErrors) -> tuple[dict[str, str], str]:
    patient, identifier = check_patient(ctx.transient.get("patient"), problems)
    return patient, identifier


def _store_patient(ctx: Context, key: str, patient: dict[str, str], pid: str) -> None:
    ctx.put_private(f"{ctx.caller.org}/{PATIENT_COLLECTION}", key, {**patient, "pid": pid})


def record_lab_result(
    ctx: Context,
    *,
    test: str,
    result: TestResult,
    specimen_date: int | str,
    result_date: int | str,
    region: str,
) -> dict[str, Any]:
    """A lab result (the patient in transient ``patient``); see the module docstring."""
    require_kind(ctx, "hospital")
    problems = FieldErrors("report_lab_result")
    item = LAB_TESTS.get(test)
    if item is None:
        problems.add("test", f"not a LOINC code of the accepted tests {sorted(LAB_TESTS)}")
    today = day_of_ms(ctx.timestamp)
    specimen, resulted = check_day_order(
        specimen_date, result_date, ("specimen_date", "result_date"), today, problems
    )
    if not RegionCheck(ctx).known(region):
        problems.add("region", "unknown region code")
    patient, identifier = _new_patient(ctx, problems)
    problems.raise_if_any()
    assert item is not None and specimen is not None and resulted is not None
    key, key_version = pseudonymisation_key(ctx)
    pid = pseudo.pseudonym(key, identifier)
    lab_id = f"l-{ctx.tx_id[:24]}"
    _store_patient(ctx, lab_id, patient, pid)
    record = {
        "lab_id": lab_id,
        "pid": pid,
        "pid_key_version": key_version,
        "test": test,
        "disease": item.disease,
        "result": result,
        "specimen_day": specimen,
        "result_day": resulted,
        "region": region,
        "reporter_org": ctx.caller.org,
        "reporter": ctx.caller.id,
        "reported_at": ctx.timestamp,
    }
    ctx.put(f"lab/{lab_id}", record)
    ctx.emit("lab_result", public_lab(record))
    return {"lab_id": lab_id}


def record_vaccination(
    ctx: Context,
    *,
    vaccine: str,
    dose_number: int,
    administered_date: int | str,
    region: str,
    lot: str,
) -> dict[str, Any]:
    """A dose given (the patient in transient ``patient``); one record per person,
    vaccine and dose number."""
    require_kind(ctx, "hospital")
    problems = FieldErrors("record_vaccination")
    item = VACCINES.get(vaccine)
    if item is None:
        problems.add("vaccine", f"not a CVX code of the accepted vaccines {sorted(VACCINES)}")
    if not 1 <= dose_number <= MAX_DOSE:
        problems.add("dose_number", f"must be 1 to {MAX_DOSE}")
    if not re.fullmatch(LOT_PATTERN, lot):
        problems.add("lot", "up to 20 letters, digits or hyphens")
    day = date_field(administered_date, "administered_date", problems)
    if day is not None and day > day_of_ms(ctx.timestamp):
        problems.add("administered_date", "is in the future")
    if not RegionCheck(ctx).known(region):
        problems.add("region", "unknown region code")
    patient, identifier = _new_patient(ctx, problems)
    problems.raise_if_any()
    assert item is not None and day is not None
    key, key_version = pseudonymisation_key(ctx)
    pid = pseudo.pseudonym(key, identifier)
    index = f"dose/{pid}/{vaccine}/{dose_number}"
    if ctx.get(index) is not None:
        raise Rejected(f"dose {dose_number} of CVX {vaccine} is already recorded for this person")
    vaccination_id = f"v-{ctx.tx_id[:24]}"
    _store_patient(ctx, vaccination_id, patient, pid)
    record = {
        "vaccination_id": vaccination_id,
        "pid": pid,
        "pid_key_version": key_version,
        "vaccine": vaccine,
        "disease": item.disease,
        "dose_number": dose_number,
        "day": day,
        "lot": lot,
        "region": region,
        "reporter_org": ctx.caller.org,
        "reporter": ctx.caller.id,
        "reported_at": ctx.timestamp,
    }
    ctx.put(f"vaccination/{vaccination_id}", record)
    ctx.put(index, {"vaccination_id": vaccination_id})
    ctx.emit("vaccination_recorded", public_vaccination(record))
    return {"vaccination_id": vaccination_id}


def public_lab(record: dict[str, Any]) -> dict[str, Any]:
    """What a lab result event carries: no pseudonymous id, nothing personal."""
    keep = ("lab_id", "test", "disease", "result", "specimen_day", "result_day", "region")
    return {k: record[k] for k in keep} | {"reporter_org": record["reporter_org"]}


def public_vaccination(record: dict[str, Any]) -> dict[str, Any]:
    """What a vaccination event carries: no pseudonymous id, nothing personal."""
    keep = ("vaccination_id", "vaccine", "disease", "dose_number", "day", "region")
    return {k: record[k] for k in keep} | {"reporter_org": record["reporter_org"]}
