"""Reports as they arrive, turned into epidemic contract calls: public arguments and
a transient patient. A case report comes as a plain form or a FHIR R4 Bundle
(``report_case``); a lab result as a Bundle with a Patient and an Observation
(``report_lab_result``); a vaccination as a Bundle with a Patient and an
Immunization (``record_vaccination``).

FHIR mapping (R4, validated with ``fhir.resources.R4B``): the Bundle holds exactly
one Patient, one Condition and one Encounter; Condition.subject and
Encounter.subject reference the Patient. A Bundle of several records (and patients)
is read whole by :mod:`healthledger.apps.epidemic.fhir_bundle` into one
``report_bundle`` call.

* disease: Condition.code.coding with system ``http://hl7.org/fhir/sid/icd-10``
* classification: Condition.verificationStatus ``provisional`` → suspected,
  ``differential`` → probable, ``confirmed`` → confirmed
* onset date: Condition.onsetDateTime; diagnosis date: Condition.recordedDate
* region: the first Patient.address whose district is a GB/T 2260 code; without one
  the region is left out and the contract places the record at the reporting
  organisation's region, flagged ``residence-unknown``
* identifier: Patient.identifier typed (HL7 v2 table 0203) ``NI``, else ``PPN`` (or a
  ``http://hl7.org/fhir/sid/passport-<country>`` system), else any identifier with a
  system (an ``MR`` without one: its assigner), pseudonymised by system and value;
  with none, the person is pseudonymised by name and birth date (flagged). Name,
  phone (telecom), address text, sex and birth date go to the vault.

Observation (status final, amended or corrected; subject the Patient):

* test: Observation.code.coding with system ``http://loinc.org`` (observations.LAB_TESTS)
* result: Observation.valueCodeableConcept (SNOMED CT 260373001 detected / 10828004
  positive, 260415000 not detected / 260385009 negative, 419984006 inconclusive /
  82334004 indeterminate), else Observation.interpretation (v3 POS, DET / NEG, ND / IND)
* specimen date: Observation.effective[x] (dateTime, instant, or a period's start);
  result date: Observation.issued, else the date (a period's end) of effective[x]

Immunization (status completed; patient the Patient):

* vaccine: Immunization.vaccineCode.coding with system ``http://hl7.org/fhir/sid/cvx``
* date: Immunization.occurrenceDateTime; dose:
  Immunization.protocolApplied[0].doseNumberPositiveInt (1 if absent); lot: lotNumber
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import pydantic
from fhir.resources.R4B.bundle import Bundle

from healthledger.apps.epidemic.observations import CVX_SYSTEM, LOINC_SYSTEM
from healthledger.contracts.errors import InvalidArguments

ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
SNOMED_SYSTEM = "http://snomed.info/sct"
SNOMED_RESULTS = {
    "260373001": "positive",
    "10828004": "positive",
    "260415000": "negative",
    "260385009": "negative",
    "419984006": "inconclusive",
    "82334004": "inconclusive",
}
INTERPRETATIONS = {
    "POS": "positive",
    "DET": "positive",
    "NEG": "negative",
    "ND": "negative",
    "IND": "inconclusive",
}
RESULT_STATUSES = ("final", "amended", "corrected")
ID_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"
VERIFICATION = {"provisional": "suspected", "differential": "probable", "confirmed": "confirmed"}
MAX_DEPTH = 64
"""Objects and arrays nested deeper are refused: validating a Bundle recurses per level."""


@dataclass(frozen=True)
class Submission:
    """An epidemic contract call: function, public arguments, private transient map."""

    function: str
    args: dict[str, Any]
    transient: dict[str, Any]


@dataclass(frozen=True)
class CaseSubmission:
    """A ``report_case`` call: public arguments and the private transient map."""

    args: dict[str, Any]
    transient: dict[str, Any]


class CaseForm(pydantic.BaseModel):
    """The plain reporting form."""

    model_config = pydantic.ConfigDict(extra="forbid", str_strip_whitespace=True)

    disease: str = pydantic.Field(min_length=1, description="ICD-10 code, e.g. J10.1")
    classification: Literal["suspected", "probable", "confirmed"]
    onset_date: str = pydantic.Field(description="ISO date")
    diagnosis_date: str = pydantic.Field(description="ISO date")
    region: str = pydantic.Field(pattern=r"^[1-9][0-9]{5}$", description="GB/T 2260 code")
    name: str = pydantic.Field(min_length=1)
    id_type: Literal["NI", "PPN"] = "NI"
    id_number: str = pydantic.Field(min_length=1)
    country: str | None = None
    phone: str | None = None
    address: str | None = None
    sex: str | None = None
    birth_date: str | None = None


_PATIENT_FIELDS = (
    "name",
    "id_type",
    "id_number",
    "country",
    "phone",
    "address",
    "sex",
    "birth_date",
)


def from_form(data: dict[str, Any]) -> CaseSubmission:
    """The submission of a plain form; InvalidArguments naming each bad field."""
    try:
        form = CaseForm.model_validate(data)
    except pydantic.ValidationError as exc:
        raise _invalid("form", exc) from exc
    patient = {f: getattr(form, f) for f in _PATIENT_FIELDS if getattr(form, f) is not None}
    return CaseSubmission(
        args={
            "disease": form.disease,
            "classification": form.classification,
            "onset_date": form.onset_date,
            "diagnosis_date": form.diagnosis_date,
            "region": form.region,
        },
        transient={"patient": patient},
    )


Picked = dict[str, tuple[int, Any, str | None]]


def parsed_bundle(data: Any, prefix: str = "Bundle") -> Any:
    """``data`` validated as a FHIR R4 Bundle; InvalidArguments naming each defect's place
    (``prefix``: how the Bundle itself is named)."""
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise _problems([{"field": prefix, "message": "must be a FHIR Bundle (resourceType)"}])
    unreadable = _unreadable(data)
    if unreadable is not None:
        raise _problems([{"field": prefix, "message": unreadable}])
    try:
        return Bundle.model_validate(data)
    except pydantic.ValidationError as exc:
        raise _invalid(prefix, exc) from exc
    except (KeyError, TypeError) as exc:
        # fhir.resources looks a resource's resourceType up in its table of types unguarded:
        # an unknown name is a KeyError, a name that is not a string a TypeError.
        message = "a resource's resourceType is not a FHIR R4 resource type"
        raise _problems([{"field": f"{prefix}.entry", "message": message}]) from exc


def _pick(data: dict[str, Any], kinds: tuple[str, ...], problems: list[dict[str, str]]) -> Picked:
    """The one resource of each of ``kinds`` in a validated Bundle (by type)."""
    bundle = parsed_bundle(data, "bundle")
    found: dict[str, list[tuple[int, Any, str | None]]] = {}
    for i, entry in enumerate(bundle.entry or []):
        resource = entry.resource
        if resource is not None:
            found.setdefault(resource.get_resource_type(), []).append((i, resource, entry.fullUrl))
    picked: Picked = {}
    for kind in kinds:
        items = found.get(kind, [])
        if len(items) != 1:
            problems.append(
                {
                    "field": f"bundle.entry[{kind}]",
                    "message": f"needs exactly one {kind}, found {len(items)}"
                    + (" (POST /fhir records a Bundle of several)" if len(items) > 1 else ""),
                }
            )
        else:
            picked[kind] = items[0]
    if len(picked) < len(kinds):
        raise _problems(problems)
    return picked


class BundleReading:
    """One Bundle being read: its picked Patient and resources, the contract arguments
    found so far and every problem, each naming its field."""

    def __init__(self, data: dict[str, Any], kinds: tuple[str, ...]) -> None:
        self.problems: list[dict[str, str]] = []
        self.picked = _pick(data, ("Patient", *kinds), self.problems)
        self.args: dict[str, Any] = {}

    def resource(self, kind: str) -> Any:
        """The picked resource of ``kind``."""
        return self.picked[kind][1]

    def field(self, kind: str, path: str) -> str:
        """The name of field ``path`` of the picked resource of ``kind``."""
        return f"bundle.entry[{self.picked[kind][0]}].resource.{path}"

    def problem(self, kind: str, path: str, message: str) -> None:
        """Note that field ``path`` of ``kind`` is wrong."""
        self.problems.append({"field": self.field(kind, path), "message": message})

    def check_subject(self, kind: str, path: str, reference: Any) -> None:
        """``reference`` (field ``path`` of ``kind``) must point at the Patient."""
        _, patient, patient_url = self.picked["Patient"]
        refs = {r for r in (patient_url, f"Patient/{patient.id}" if patient.id else None) if r}
        target = reference.reference if reference is not None else None
        if target not in refs:
            self.problem(kind, path, f"{kind}.{path} must reference the Patient")

    def take(self, arg: str, kind: str, path: str, value: Any, message: str = "required") -> None:
        """Argument ``arg`` is ``value`` (None: missing, a problem with ``message``)."""
        if value is None:
            self.problem(kind, path, message)
        else:
            self.args[arg] = value

    def take_date(
        self, arg: str, kind: str, path: str, value: Any, message: str = "required"
    ) -> None:
        """Argument ``arg`` is the calendar date of FHIR date(Time) ``value``."""
        self.take(arg, kind, path, None if value is None else _date_text(value), message)

    def take_code(self, arg: str, kind: str, path: str, concept: Any, system: str) -> None:
        """Argument ``arg`` is the one code of ``system`` in ``concept``."""
        codes = _codes(concept, system)
        one = codes[0] if len(codes) == 1 else None
        self.take(arg, kind, path, one, f"needs one coding of {system}")

    def patient(self) -> dict[str, str]:
        """The region argument and the person for the vault, from the Patient; raise
        InvalidArguments listing every problem found so far."""
        patient = self.resource("Patient")
        base = self.field("Patient", "").rstrip(".")
        district = district_of(patient)
        if district is not None:
            self.args["region"] = district
        person = _patient_fields(patient, base, self.problems)
        if self.problems:
            raise _problems(self.problems)
        return person


GBT2260 = re.compile(r"^[1-9][0-9]{5}$")


def district_of(patient: Any) -> str | None:
    """The GB/T 2260 district of the first address that names one as a code, or None:
    the person is then placed at the reporting organisation's region, flagged
    residence unknown."""
    for address in patient.address or []:
        district = str(address.district).strip() if address.district else ""
        if GBT2260.match(district):
            return district
    return None


def from_fhir_bundle(data: dict[str, Any]) -> CaseSubmission:
    """The submission of a FHIR R4 Bundle; InvalidArguments naming each bad field."""
    reading = BundleReading(data, ("Condition", "Encounter"))
    condition = reading.resource("Condition")
    reading.check_subject("Condition", "subject", condition.subject)
    reading.check_subject("Encounter", "subject", reading.resource("Encounter").subject)
    reading.take_code("disease", "Condition", "code", condition.code, ICD10_SYSTEM)
    reading.take(
        "classification",
        "Condition",
        "verificationStatus",
        VERIFICATION.get(_code(condition.verificationStatus) or ""),
        f"must be one of {sorted(VERIFICATION)}",
    )
    reading.take_date("onset_date", "Condition", "onsetDateTime", condition.onsetDateTime)
    reading.take_date(
        "diagnosis_date",
        "Condition",
        "recordedDate",
        condition.recordedDate,
        "required (the diagnosis date)",
    )
    person = reading.patient()
    return CaseSubmission(args=reading.args, transient={"patient": person})


def from_lab_bundle(data: dict[str, Any]) -> Submission:
    """A ``report_lab_result`` call from a Bundle of a Patient and an Observation."""
    reading = BundleReading(data, ("Observation",))
    observation = reading.resource("Observation")
    reading.check_subject("Observation", "subject", observation.subject)
    if observation.status not in RESULT_STATUSES:
        reading.problem("Observation", "status", f"must be one of {RESULT_STATUSES}")
    reading.take_code("test", "Observation", "code", observation.code, LOINC_SYSTEM)
    reading.take(
        "result",
        "Observation",
        "valueCodeableConcept",
        _result(observation),
        "a SNOMED CT result (detected, not detected, ...) or an "
        "interpretation (POS, NEG, IND) is required",
    )
    specimen, last = _effective(observation)
    reading.take(
        "specimen_date",
        "Observation",
        "effective",
        specimen,
        "required (the specimen date): effectiveDateTime, effectiveInstant or effectivePeriod",
    )
    issued = observation.issued
    if issued is not None or last is not None:
        reading.args["result_date"] = _date_text(issued) if issued is not None else last
    person = reading.patient()
    return Submission("report_lab_result", reading.args, {"patient": person})


def from_immunization_bundle(data: dict[str, Any]) -> Submission:
    """A ``record_vaccination`` call from a Bundle of a Patient and an Immunization."""
    reading = BundleReading(data, ("Immunization",))
    immunization = reading.resource("Immunization")
    reading.check_subject("Immunization", "patient", immunization.patient)
    if immunization.status != "completed":
        reading.problem("Immunization", "status", "only completed doses")
    reading.take_code(
        "vaccine", "Immunization", "vaccineCode", immunization.vaccineCode, CVX_SYSTEM
    )
    reading.take_date(
        "administered_date", "Immunization", "occurrenceDateTime", immunization.occurrenceDateTime
    )
    applied = immunization.protocolApplied[0] if immunization.protocolApplied else None
    dose = applied.doseNumberPositiveInt if applied is not None else None
    if applied is not None and dose is None:
        reading.problem(
            "Immunization",
            "protocolApplied[0].doseNumberPositiveInt",
            "the dose number, a positive integer",
        )
    reading.args["dose_number"] = int(dose) if dose is not None else 1
    if immunization.lotNumber:
        reading.args["lot"] = str(immunization.lotNumber)
    person = reading.patient()
    return Submission("record_vaccination", reading.args, {"patient": person})


def _unreadable(data: Any) -> str | None:
    """Why ``data`` cannot be validated as a Bundle at all, or None: objects and arrays
    nested deeper than MAX_DEPTH, or text with a lone surrogate (JSON's \\ud800 escapes),
    which fhir.resources fails to quote in its own error messages. Walked without recursion."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if not value.isascii() and not _is_unicode(value):
                return "text holds a lone surrogate (a \\ud800-\\udfff escape): not Unicode"
            continue
        if isinstance(value, dict):
            value = [*value, *value.values()]
        if isinstance(value, list):
            if depth > MAX_DEPTH:
                return f"objects and arrays nested deeper than {MAX_DEPTH} levels"
            stack.extend((item, depth + 1) for item in value)
    return None


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _effective(observation: Any) -> tuple[str | None, str | None]:
    """The specimen date and the last date of ``effective[x]`` (None: absent)."""
    if observation.effectiveDateTime is not None:
        day = _date_text(observation.effectiveDateTime)
        return day, day
    if observation.effectiveInstant is not None:
        day = _date_text(observation.effectiveInstant)
        return day, day
    period = observation.effectivePeriod
    if period is not None and (period.start or period.end):
        start = _date_text(period.start or period.end)
        return start, _date_text(period.end or period.start)
    return None, None


def _codes(concept: Any, system: str) -> list[str]:
    codings = concept.coding if concept is not None and concept.coding else []
    return [str(c.code) for c in codings if c.system == system and c.code]


def _result(observation: Any) -> str | None:
    for code in _codes(observation.valueCodeableConcept, SNOMED_SYSTEM):
        if code in SNOMED_RESULTS:
            return SNOMED_RESULTS[code]
    for concept in observation.interpretation or []:
        for coding in concept.coding or []:
            if coding.code in INTERPRETATIONS:
                return INTERPRETATIONS[str(coding.code)]
    return None


def _patient_fields(patient: Any, base: str, problems: list[dict[str, str]]) -> dict[str, str]:
    person: dict[str, str] = {}
    name = patient.name[0] if patient.name else None
    text = None
    if name is not None:
        # fhir.resources accepts a null among a list's strings ("given": [null]).
        given = [part for part in name.given or [] if part]
        text = name.text or " ".join([*given, name.family or ""]).strip()
    if not text:
        problems.append({"field": f"{base}.name", "message": "required"})
    else:
        person["name"] = text
    if patient.birthDate:
        person["birth_date"] = str(patient.birthDate)
    chosen = _identifier(patient.identifier or [])
    if chosen is not None:
        person.update(chosen)
    elif "birth_date" not in person:
        problems.append({"field": f"{base}.identifier", "message": IDENTIFIER_REQUIRED})
    phones = [t.value for t in (patient.telecom or []) if t.system == "phone" and t.value]
    if phones:
        person["phone"] = phones[0]
    address = patient.address[0] if patient.address else None
    if address is not None:
        lines = [part for part in address.line or [] if part]
        line = address.text or ", ".join([*lines, address.city or ""]).strip(", ")
        if line:
            person["address"] = line
    if patient.gender:
        person["sex"] = patient.gender
    return person


IDENTIFIER_REQUIRED = (
    f"needs an identifier typed NI or PPN ({ID_TYPE_SYSTEM}), one with a system (an MR "
    "with its assigner), or else a name and a birth date"
)
PASSPORT_SYSTEM = re.compile(r"passport-([A-Z]{3})$")
"""FHIR's passport number systems: http://hl7.org/fhir/sid/passport-<ISO 3166 alpha-3>."""


def _identifier(identifiers: list[Any]) -> dict[str, str] | None:
    """The transient fields of the identifier a person is pseudonymised by: NI first, then
    a passport, then any identifier with a namespace (its system, or an MR's assigner)."""
    ranked: list[tuple[int, dict[str, str]]] = []
    for identifier in identifiers:
        value = str(identifier.value).strip() if identifier.value else ""
        if not value:
            continue
        kind = _code(identifier.type) or ""
        system = str(identifier.system) if identifier.system else ""
        if kind == "NI":
            ranked.append((0, {"id_type": "NI", "id_number": value}))
        elif kind == "PPN" or PASSPORT_SYSTEM.search(system):
            found = {"id_type": "PPN", "id_number": value}
            country = PASSPORT_SYSTEM.search(system)
            if country:
                found["country"] = country.group(1)
            ranked.append((1, found))
        else:
            namespace = (system or _assigner(identifier.assigner)) if kind == "MR" else system
            if namespace:
                fields = {"id_type": kind or "ID", "id_number": value, "id_system": namespace}
                ranked.append((2, fields))
    return min(ranked, key=lambda r: r[0])[1] if ranked else None


def _assigner(reference: Any) -> str:
    """The namespace an MR's assigner gives it: its identifier, reference or name."""
    if reference is None:
        return ""
    found = reference.identifier
    if found is not None and found.value:
        return f"assigner:{found.system or ''}|{found.value}"
    named = reference.reference or reference.display
    return f"assigner:{named}" if named else ""


def _code(concept: Any) -> str | None:
    for coding in (concept.coding or []) if concept is not None else []:
        if coding.code:
            return str(coding.code)
    return None


def _date_text(value: Any) -> str:
    """The calendar date of a FHIR date or dateTime (its first ten characters)."""
    return str(value.isoformat() if hasattr(value, "isoformat") else value)[:10]


def _invalid(prefix: str, exc: pydantic.ValidationError) -> InvalidArguments:
    return _problems(
        [
            {"field": prefix + "".join(_loc(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors()
        ]
    )


def _loc(part: str | int) -> str:
    return f"[{part}]" if isinstance(part, int) else f".{part}"


def _problems(problems: list[dict[str, str]]) -> InvalidArguments:
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return InvalidArguments(f"invalid report: {summary}", problems)
