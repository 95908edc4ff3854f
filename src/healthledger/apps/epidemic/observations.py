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
    person-lab/<pid>/<lab_id>          index: a person's test results
    recent/<kind>/...                  index: newest recorded first (see recent_index.py)

Vaccinations given through the supply application (its ``vaccine_administered``
event) are linked by the monitoring read model from the event stream and never
recorded here a second time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from healthledger.apps.epidemic import pseudonym as pseudo
from healthledger.apps.epidemic import recent_index
from healthledger.apps.epidemic.cases import Person, check_people
from healthledger.apps.epidemic.checks import (
    PATIENT_COLLECTION,
    FieldErrors,
    RegionCheck,
    check_day_order,
    date_field,
    patient_flags,
    placed,
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
        CodedItem("213", "covid-19", "SARS-CoV-2 (COVID-19) vaccine, unspecified"),
        CodedItem("229", "covid-19", "COVID-19, mRNA, LNP-S, bivalent, PF, 50 mcg/0.5 mL"),
        CodedItem("300", "covid-19", "COVID-19, mRNA, LNP-S, bivalent, PF, 30 mcg/0.3 mL"),
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


@dataclass(frozen=True)
class CheckedLab:
    """A lab result that passed its checks, ready to be written."""

    args: Any
    item: CodedItem
    specimen: int
    resulted: int
    region: str
    flags: list[str]
    person: Person


@dataclass(frozen=True)
class CheckedDose:
    """A dose that passed its checks, ready to be written."""

    args: Any
    item: CodedItem
    day: int
    region: str
    flags: list[str]
    person: Person


def check_labs(
    ctx: Context, labs: list[Any], people: list[Person], prefix: str
) -> tuple[list[CheckedLab], list[dict[str, str]]]:
    """Each lab result checked (``prefix``: how its fields are named, ``{i}`` its index)."""
    reporter = require_kind(ctx, "hospital")
    today = day_of_ms(ctx.timestamp)
    regions = RegionCheck(ctx)
    checked, errors = [], []
    for i, (lab, person) in enumerate(zip(labs, people, strict=True)):
        problems = FieldErrors("report_lab_result", prefix.format(i=i))
        item = LAB_TESTS.get(lab["test"])
        if item is None:
            problems.add("test", f"not a LOINC code of the accepted tests {sorted(LAB_TESTS)}")
        specimen, resulted = check_day_order(
            lab["specimen_date"],
            lab["result_date"],
            ("specimen_date", "result_date"),
            today,
            problems,
        )
        region, flags = placed(lab.get("region", ""), reporter, regions, problems)
        errors += problems.errors
        if not problems.errors:
            assert item is not None and specimen is not None and resulted is not None
            flags += patient_flags(person.identifier)
            checked.append(CheckedLab(lab, item, specimen, resulted, region, flags, person))
    return checked, errors


def check_doses(
    ctx: Context, doses: list[Any], people: list[Person], prefix: str
) -> tuple[list[CheckedDose], list[dict[str, str]]]:
    """Each dose checked (``prefix``: how its fields are named, ``{i}`` its index)."""
    reporter = require_kind(ctx, "hospital")
    today = day_of_ms(ctx.timestamp)
    regions = RegionCheck(ctx)
    checked, errors = [], []
    for i, (dose, person) in enumerate(zip(doses, people, strict=True)):
        problems = FieldErrors("record_vaccination", prefix.format(i=i))
        item = VACCINES.get(dose["vaccine"])
        if item is None:
            problems.add("vaccine", f"not a CVX code of the accepted vaccines {sorted(VACCINES)}")
        if not 1 <= dose["dose_number"] <= MAX_DOSE:
            problems.add("dose_number", f"must be 1 to {MAX_DOSE}")
        if not re.fullmatch(LOT_PATTERN, dose.get("lot", "")):
            problems.add("lot", "up to 20 letters, digits or hyphens")
        day = date_field(dose["administered_date"], "administered_date", problems)
        if day is not None and day > today:
            problems.add("administered_date", "is in the future")
        region, flags = placed(dose.get("region", ""), reporter, regions, problems)
        errors += problems.errors
        if not problems.errors:
            assert item is not None and day is not None
            flags += patient_flags(person.identifier)
            checked.append(CheckedDose(dose, item, day, region, flags, person))
    return checked, errors


def _store_patient(ctx: Context, key: str, person: Person, pid: str) -> None:
    ctx.put_private(f"{ctx.caller.org}/{PATIENT_COLLECTION}", key, {**person.patient, "pid": pid})


def _reported(ctx: Context, record: dict[str, Any], flags: list[str]) -> dict[str, Any]:
    record |= {"reporter_org": ctx.caller.org, "reporter": ctx.caller.id}
    record["reported_at"] = ctx.timestamp
    if flags:
        record["flags"] = flags
    return record


def write_labs(ctx: Context, checked: list[CheckedLab], *, suffixed: bool) -> list[dict[str, Any]]:
    """Record checked lab results (``suffixed``: ids numbered within the transaction)."""
    key, key_version = pseudonymisation_key(ctx)
    results = []
    for i, lab in enumerate(checked):
        pid = pseudo.pseudonym(key, lab.person.identifier)
        lab_id = f"l-{ctx.tx_id[:24]}" + (f"-{i}" if suffixed else "")
        _store_patient(ctx, lab_id, lab.person, pid)
        record = {
            "lab_id": lab_id,
            "pid": pid,
            "pid_key_version": key_version,
            "test": lab.args["test"],
            "disease": lab.item.disease,
            "result": lab.args["result"],
            "specimen_day": lab.specimen,
            "result_day": lab.resulted,
            "region": lab.region,
        }
        ctx.put(f"lab/{lab_id}", _reported(ctx, record, lab.flags))
        recent_index.record_entries(ctx, "lab", lab_id, record)
        ctx.put(f"person-lab/{pid}/{lab_id}", {"result_day": lab.resulted})
        ctx.emit("lab_result", public_lab(record))
        results.append({"lab_id": lab_id})
    return results


def write_doses(
    ctx: Context, checked: list[CheckedDose], *, suffixed: bool
) -> list[dict[str, Any]]:
    """Record checked doses, one per person, vaccine and dose number: Rejected if one is
    recorded already (or twice in ``checked``)."""
    key, key_version = pseudonymisation_key(ctx)
    results = []
    seen = set()
    for i, dose in enumerate(checked):
        pid = pseudo.pseudonym(key, dose.person.identifier)
        vaccine, number = dose.args["vaccine"], dose.args["dose_number"]
        index = f"dose/{pid}/{vaccine}/{number}"
        if index in seen or ctx.get(index) is not None:
            raise Rejected(f"dose {number} of CVX {vaccine} is already recorded for this person")
        seen.add(index)
        vaccination_id = f"v-{ctx.tx_id[:24]}" + (f"-{i}" if suffixed else "")
        _store_patient(ctx, vaccination_id, dose.person, pid)
        record = {
            "vaccination_id": vaccination_id,
            "pid": pid,
            "pid_key_version": key_version,
            "vaccine": vaccine,
            "disease": dose.item.disease,
            "dose_number": number,
            "day": dose.day,
            "lot": dose.args.get("lot", ""),
            "region": dose.region,
        }
        ctx.put(f"vaccination/{vaccination_id}", _reported(ctx, record, dose.flags))
        recent_index.record_entries(ctx, "vaccination", vaccination_id, record)
        ctx.put(index, {"vaccination_id": vaccination_id})
        ctx.emit("vaccination_recorded", public_vaccination(record))
        results.append({"vaccination_id": vaccination_id})
    return results


def _the_patient(ctx: Context) -> tuple[list[Person], list[dict[str, str]]]:
    """Transient ``patient`` checked, its problems named ``transient.patient.<field>``."""
    errors: list[dict[str, str]] = []
    people = check_people([ctx.transient.get("patient")], "transient.patient", errors)
    for error in errors:
        error["field"] = error["field"].replace("transient.patient[0]", "transient.patient", 1)
    return people, errors


def raise_problems(function: str, errors: list[dict[str, str]]) -> None:
    """InvalidArguments naming each field of ``errors``, if there are any."""
    failed = FieldErrors(function)
    failed.errors = errors
    failed.raise_if_any()


def record_lab_result(ctx: Context, **args: Any) -> dict[str, Any]:
    """A lab result (the patient in transient ``patient``); see the module docstring."""
    people, errors = _the_patient(ctx)
    checked, problems = check_labs(ctx, [args], people, "")
    raise_problems("report_lab_result", problems + errors)
    return write_labs(ctx, checked, suffixed=False)[0]


def record_vaccination(ctx: Context, **args: Any) -> dict[str, Any]:
    """A dose given (the patient in transient ``patient``); one record per person,
    vaccine and dose number."""
    people, errors = _the_patient(ctx)
    checked, problems = check_doses(ctx, [args], people, "")
    raise_problems("record_vaccination", problems + errors)
    return write_doses(ctx, checked, suffixed=False)[0]


def public_lab(record: dict[str, Any]) -> dict[str, Any]:
    """What a lab result event carries: no pseudonymous id, nothing personal."""
    keep = ("lab_id", "test", "disease", "result", "specimen_day", "result_day", "region")
    return {k: record[k] for k in keep} | {"reporter_org": record["reporter_org"]}


def public_vaccination(record: dict[str, Any]) -> dict[str, Any]:
    """What a vaccination event carries: no pseudonymous id, nothing personal."""
    keep = ("vaccination_id", "vaccine", "disease", "dose_number", "day", "region")
    return {k: record[k] for k in keep} | {"reporter_org": record["reporter_org"]}
