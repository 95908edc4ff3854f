"""A FHIR R4 Bundle as hospitals send it, read whole: every Condition a case report,
every laboratory Observation a lab result, every Immunization a dose, each naming its
Patient, all of them one ``report_bundle`` call (one transaction, all or nothing).
The profile accepted is written out for integrators in ``docs/fhir-profile.md``.

Differences from the one-record readers of :mod:`intake` (whose field rules this
reader shares):

* any number of records, and of Patients (each record names its own by ``fullUrl`` or
  ``Patient/<id>``); a Patient named by no record is not sent;
* an Observation without ``issued`` takes its result date from ``effective[x]``
  (``effectiveDateTime``, ``effectiveInstant`` or ``effectivePeriod``);
* an Observation whose category is not ``laboratory`` (vital signs, social history,
  ...) is not a lab result: it is left out and said so, never silently;
* an Immunization without ``protocolApplied`` is numbered by date among the person's
  doses of the same disease in the Bundle;
* a message Bundle (``$process-message``) is read through its MessageHeader's
  ``focus``: a document Bundle (an eICR) inside it, or the message's own entries.

Every problem names its place as a FHIRPath-like expression
(``Bundle.entry[2].resource.vaccineCode``), and so do the contract's own refusals,
mapped back by :meth:`BundleSubmission.locate`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from healthledger.apps.epidemic.diseases import disease_for_icd10
from healthledger.apps.epidemic.intake import (
    ICD10_SYSTEM,
    RESULT_STATUSES,
    VERIFICATION,
    _code,
    _codes,
    _date_text,
    _effective,
    _patient_fields,
    _problems,
    _result,
    district_of,
    parsed_bundle,
)
from healthledger.apps.epidemic.observations import CVX_SYSTEM, LAB_TESTS, LOINC_SYSTEM, VACCINES
from healthledger.contracts.errors import InvalidArguments

FUNCTION = "report_bundle"
RECORDED = ("Condition", "Observation", "Immunization")
ACCEPTED_TYPES = ("transaction", "collection")
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ARG_PATHS = {
    "disease": "code",
    "classification": "verificationStatus",
    "onset_date": "onsetDateTime",
    "diagnosis_date": "recordedDate",
    "test": "code",
    "result": "valueCodeableConcept",
    "specimen_date": "effective",
    "result_date": "issued",
    "vaccine": "vaccineCode",
    "dose_number": "protocolApplied[0].doseNumberPositiveInt",
    "administered_date": "occurrenceDateTime",
    "lot": "lotNumber",
}
"""Where in its resource each contract argument comes from (to locate its refusals)."""
PATIENT_PATHS = {
    "name": "name",
    "id_type": "identifier",
    "id_number": "identifier",
    "id_system": "identifier",
    "country": "identifier",
    "birth_date": "birthDate",
    "phone": "telecom",
    "address": "address",
    "sex": "gender",
}
_PART = re.compile(r"^(cases|labs|doses)\[(\d+)\](?:\.(\w+))?")
_PERSON = re.compile(r"^transient\.patients\[(\d+)\](?:\.(\w+))?")


@dataclass(frozen=True)
class Note:
    """Something the sender should know that is not a refusal: a record flagged, a
    resource left out. ``severity`` as FHIR's OperationOutcome has it."""

    location: str
    message: str
    severity: str = "warning"


@dataclass(frozen=True)
class BundleSubmission:
    """The ``report_bundle`` call a Bundle becomes, with where each record came from."""

    args: dict[str, list[dict[str, Any]]]
    transient: dict[str, Any]
    sources: dict[str, str]
    """``cases[0]`` -> ``Bundle.entry[1].resource``; ``patients[0]`` likewise."""
    notes: list[Note] = field(default_factory=list)
    function: str = FUNCTION

    def locate(self, arg_field: str) -> str:
        """The FHIRPath-like place of a contract argument named in a refusal
        (``doses[1].vaccine`` -> ``Bundle.entry[2].resource.vaccineCode``)."""
        found = _PART.match(arg_field)
        if found:
            part, index, name = found.groups()
            base = self.sources.get(f"{part}[{index}]", "Bundle")
            if name == "region":
                return self.sources.get(f"{part}[{index}].patient", base) + ".address"
            return base + ("." + ARG_PATHS[name] if name in ARG_PATHS else "")
        person = _PERSON.match(arg_field)
        if person:
            index, name = person.groups()
            base = self.sources.get(f"patients[{index}]", "Bundle")
            return base + ("." + PATIENT_PATHS[name] if name in PATIENT_PATHS else "")
        return "Bundle"


def from_bundle(data: Any) -> BundleSubmission:
    """The ``report_bundle`` call of a transaction or collection Bundle;
    InvalidArguments naming each defect's place."""
    bundle = parsed_bundle(data)
    if bundle.type not in ACCEPTED_TYPES:
        raise _refused("Bundle.type", f"must be one of {list(ACCEPTED_TYPES)} (POST /fhir)")
    return _Reader(bundle, "Bundle").submission()


def from_message(data: Any) -> BundleSubmission:
    """The ``report_bundle`` call of a message Bundle (``$process-message``): its
    MessageHeader first, its focus a document Bundle (an eICR) or resources of the
    message itself."""
    bundle = parsed_bundle(data)
    if bundle.type != "message":
        raise _refused("Bundle.type", "must be 'message' ($process-message)")
    entries = bundle.entry or []
    header = entries[0].resource if entries else None
    if header is None or header.get_resource_type() != "MessageHeader":
        raise _refused("Bundle.entry[0].resource", "the first entry must be a MessageHeader")
    focus = [str(r.reference) for r in header.focus or [] if r.reference]
    for i, entry in enumerate(entries):
        resource = entry.resource
        if resource is None or resource.get_resource_type() != "Bundle":
            continue
        if entry.fullUrl in focus or f"Bundle/{resource.id}" in focus:
            return _Reader(resource, f"Bundle.entry[{i}].resource").submission()
    return _Reader(bundle, "Bundle").submission()


def _refused(location: str, message: str) -> InvalidArguments:
    return _problems([{"field": location, "message": message}])


class _Reader:
    """One Bundle's records read into contract arguments; every problem kept."""

    def __init__(self, bundle: Any, base: str) -> None:
        self.base = base
        self.problems: list[dict[str, str]] = []
        self.notes: list[Note] = []
        self.patients: dict[str, tuple[str, Any]] = {}
        self.records: list[tuple[str, Any]] = []
        for i, entry in enumerate(bundle.entry or []):
            resource = entry.resource
            if resource is None:
                continue
            where = f"{base}.entry[{i}].resource"
            kind = resource.get_resource_type()
            if kind == "Patient":
                for name in (entry.fullUrl, f"Patient/{resource.id}" if resource.id else None):
                    if name:
                        self.patients[str(name)] = (where, resource)
            elif kind in RECORDED:
                self.records.append((where, resource))
        self.people: list[dict[str, str]] = []
        self.districts: list[str | None] = []
        self.person_of: dict[str, int] = {}
        self.sources: dict[str, str] = {}
        self.args: dict[str, list[dict[str, Any]]] = {"cases": [], "labs": [], "doses": []}

    def problem(self, location: str, message: str) -> None:
        self.problems.append({"field": location, "message": message})

    def submission(self) -> BundleSubmission:
        dose_order: list[tuple[int, str, str, int]] = []
        for where, resource in self.records:
            kind = resource.get_resource_type()
            if kind == "Condition":
                self._case(where, resource)
            elif kind == "Observation":
                self._lab(where, resource)
            else:
                self._dose(where, resource, dose_order)
        _number_doses(self.args["doses"], dose_order)
        if not any(self.args.values()) and not self.problems:
            self.problem(
                f"{self.base}.entry", "holds no Condition, laboratory Observation or Immunization"
            )
        if self.problems:
            raise _problems(self.problems)
        return BundleSubmission(
            args=self.args,
            transient={"patients": self.people},
            sources=self.sources,
            notes=self.notes,
        )

    def _person(self, where: str, path: str, reference: Any) -> int | None:
        """The index of the Patient ``reference`` names, read once."""
        target = str(reference.reference) if reference is not None and reference.reference else ""
        found = self.patients.get(target)
        if found is None:
            self.problem(f"{where}.{path}", "must reference a Patient in the Bundle")
            return None
        if target in self.person_of:
            return self.person_of[target]
        patient_where, patient = found
        index = len(self.people)
        person = _patient_fields(patient, patient_where, self.problems)
        if district_of(patient) is None:
            self.notes.append(
                Note(
                    f"{patient_where}.address",
                    "no GB/T 2260 district: placed at the reporting organisation's region "
                    "and flagged residence-unknown",
                )
            )
        if "id_number" not in person and "birth_date" in person:
            self.notes.append(
                Note(
                    f"{patient_where}.identifier",
                    "no identifier: pseudonymised by name and birth date and flagged "
                    "identified-by-name-and-birth-date",
                )
            )
        self.people.append(person)
        self.sources[f"patients[{index}]"] = patient_where
        for target_name, (other_where, _) in self.patients.items():
            if other_where == patient_where:
                self.person_of[target_name] = index
        self.districts.append(district_of(patient))
        return index

    def _add(self, part: str, where: str, index: int | None, args: dict[str, Any]) -> None:
        if index is None:
            return
        district = self.districts[index]  # the region is the named Patient's
        if district is not None:
            args["region"] = district
        args["patient"] = index
        position = len(self.args[part])
        self.sources[f"{part}[{position}]"] = where
        self.sources[f"{part}[{position}].patient"] = self.sources[f"patients[{index}]"]
        self.args[part].append(args)

    def _one_code(self, where: str, path: str, concept: Any, system: str) -> str | None:
        codes = _codes(concept, system)
        if len(codes) != 1:
            self.problem(f"{where}.{path}", f"needs one coding of {system}")
            return None
        return codes[0]

    def _case(self, where: str, condition: Any) -> None:
        index = self._person(where, "subject", condition.subject)
        args: dict[str, Any] = {}
        code = self._one_code(where, "code", condition.code, ICD10_SYSTEM)
        if code is not None:
            try:
                disease_for_icd10(code)
                args["disease"] = code
            except ValueError as exc:
                self.problem(f"{where}.code", str(exc))
        classification = VERIFICATION.get(_code(condition.verificationStatus) or "")
        if classification is None:
            self.problem(f"{where}.verificationStatus", f"must be one of {sorted(VERIFICATION)}")
        args["classification"] = classification
        for arg, path, value in (
            ("onset_date", "onsetDateTime", condition.onsetDateTime),
            ("diagnosis_date", "recordedDate", condition.recordedDate),
        ):
            if value is None:
                self.problem(f"{where}.{path}", "required")
            args[arg] = None if value is None else _date_text(value)
        self._add("cases", where, index, args)

    def _lab(self, where: str, observation: Any) -> None:
        categories = [
            str(c.code)
            for concept in observation.category or []
            for c in concept.coding or []
            if c.system == OBSERVATION_CATEGORY and c.code
        ]
        if categories and "laboratory" not in categories:
            self.notes.append(
                Note(
                    where,
                    f"category {categories[0]}: not a lab result, not recorded",
                    "information",
                )
            )
            return
        index = self._person(where, "subject", observation.subject)
        args: dict[str, Any] = {}
        if observation.status not in RESULT_STATUSES:
            self.problem(f"{where}.status", f"must be one of {list(RESULT_STATUSES)}")
        test = self._one_code(where, "code", observation.code, LOINC_SYSTEM)
        if test is not None and test not in LAB_TESTS:
            self.problem(f"{where}.code", f"LOINC {test} is not a test of {sorted(LAB_TESTS)}")
        args["test"] = test
        args["result"] = _result(observation)
        if args["result"] is None:
            self.problem(
                f"{where}.valueCodeableConcept",
                "a SNOMED CT result (detected, not detected, ...) or an interpretation "
                "(POS, NEG, IND) is required",
            )
        start, end = _effective(observation)
        if start is None:
            self.problem(f"{where}.effective", "required: effectiveDateTime, Instant or Period")
        args["specimen_date"] = start
        issued = observation.issued
        args["result_date"] = _date_text(issued) if issued is not None else end
        self._add("labs", where, index, args)

    def _dose(self, where: str, immunization: Any, order: list[tuple[int, str, str, int]]) -> None:
        index = self._person(where, "patient", immunization.patient)
        args: dict[str, Any] = {}
        if immunization.status != "completed":
            self.problem(f"{where}.status", "only completed doses")
        vaccine = self._one_code(where, "vaccineCode", immunization.vaccineCode, CVX_SYSTEM)
        if vaccine is not None and vaccine not in VACCINES:
            self.problem(
                f"{where}.vaccineCode", f"CVX {vaccine} is not a vaccine of {sorted(VACCINES)}"
            )
        args["vaccine"] = vaccine
        occurred = immunization.occurrenceDateTime
        if occurred is None:
            self.problem(f"{where}.occurrenceDateTime", "required (the date the dose was given)")
        args["administered_date"] = None if occurred is None else _date_text(occurred)
        applied = immunization.protocolApplied[0] if immunization.protocolApplied else None
        if applied is not None:
            dose = applied.doseNumberPositiveInt
            if dose is None:
                self.problem(
                    f"{where}.protocolApplied[0].doseNumberPositiveInt",
                    "the dose number, a positive integer",
                )
            args["dose_number"] = int(dose) if dose is not None else 1
        if immunization.lotNumber:
            args["lot"] = str(immunization.lotNumber)
        if index is not None and applied is None:
            disease = VACCINES[vaccine].disease if vaccine in VACCINES else str(vaccine)
            order.append((index, disease, str(args["administered_date"]), len(self.args["doses"])))
        self._add("doses", where, index, args)


def _number_doses(doses: list[dict[str, Any]], order: list[tuple[int, str, str, int]]) -> None:
    """Number the doses that carry no number: by date among one person's doses of one
    disease (ties in the Bundle's order)."""
    counts: dict[tuple[int, str], int] = {}
    for person, disease, _, position in sorted(order):
        counts[(person, disease)] = counts.get((person, disease), 0) + 1
        doses[position]["dose_number"] = counts[(person, disease)]
