"""Reports as they arrive, turned into epidemic contract calls: public arguments and
a transient patient. A case report comes as a plain form or a FHIR R4 Bundle
(``report_case``); a lab result as a Bundle with a Patient and an Observation
(``report_lab_result``); a vaccination as a Bundle with a Patient and an
Immunization (``record_vaccination``).

FHIR mapping (R4, validated with ``fhir.resources.R4B``): the Bundle holds exactly
one Patient, one Condition and one Encounter; Condition.subject and
Encounter.subject reference the Patient.

* disease: Condition.code.coding with system ``http://hl7.org/fhir/sid/icd-10``
* classification: Condition.verificationStatus ``provisional`` → suspected,
  ``differential`` → probable, ``confirmed`` → confirmed
* onset date: Condition.onsetDateTime; diagnosis date: Condition.recordedDate
* region: Patient.address[0].district, as a GB/T 2260 code
* identifier: Patient.identifier with type coding (HL7 v2 table 0203) ``NI`` or
  ``PPN``; name, phone (telecom), address text, sex and birth date go to the vault.

Observation (status final, amended or corrected; subject the Patient):

* test: Observation.code.coding with system ``http://loinc.org`` (observations.LAB_TESTS)
* result: Observation.valueCodeableConcept (SNOMED CT 260373001 detected / 10828004
  positive, 260415000 not detected / 260385009 negative, 419984006 inconclusive /
  82334004 indeterminate), else Observation.interpretation (v3 POS, DET / NEG, ND / IND)
* specimen date: Observation.effectiveDateTime; result date: Observation.issued

Immunization (status completed; patient the Patient):

* vaccine: Immunization.vaccineCode.coding with system ``http://hl7.org/fhir/sid/cvx``
* date: Immunization.occurrenceDateTime; dose:
  Immunization.protocolApplied[0].doseNumberPositiveInt (1 if absent); lot: lotNumber
"""

from __future__ import annotations

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


def _pick(data: dict[str, Any], kinds: tuple[str, ...], problems: list[dict[str, str]]) -> Picked:
    """The one resource of each of ``kinds`` in a validated Bundle (by type)."""
    try:
        bundle = Bundle.model_validate(data)
    except pydantic.ValidationError as exc:
        raise _invalid("bundle", exc) from exc
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
                    "message": f"needs exactly one {kind}, found {len(items)}",
                }
            )
        else:
            picked[kind] = items[0]
    if len(picked) < len(kinds):
        raise _problems(problems)
    return picked


def _patient_refs(picked: Picked) -> set[str]:
    _, patient, patient_url = picked["Patient"]
    return {r for r in (patient_url, f"Patient/{patient.id}" if patient.id else None) if r}


def _region(patient: Any, pbase: str, problems: list[dict[str, str]]) -> str | None:
    address = patient.address[0] if patient.address else None
    if address is None or not address.district:
        problems.append(
            {
                "field": f"{pbase}.address[0].district",
                "message": "required: the GB/T 2260 region code",
            }
        )
        return None
    return str(address.district)


def from_fhir_bundle(data: dict[str, Any]) -> CaseSubmission:
    """The submission of a FHIR R4 Bundle; InvalidArguments naming each bad field."""
    problems: list[dict[str, str]] = []
    picked = _pick(data, ("Patient", "Condition", "Encounter"), problems)
    p_index, patient, _ = picked["Patient"]
    c_index, condition, _ = picked["Condition"]
    e_index, encounter, _ = picked["Encounter"]
    refs = _patient_refs(picked)
    for index, resource, kind in (
        (c_index, condition, "Condition"),
        (e_index, encounter, "Encounter"),
    ):
        subject = resource.subject.reference if resource.subject else None
        if subject not in refs:
            problems.append(
                {
                    "field": f"bundle.entry[{index}].resource.subject",
                    "message": f"{kind}.subject must reference the Patient",
                }
            )
    args: dict[str, Any] = {}
    base = f"bundle.entry[{c_index}].resource"
    icd = [
        c.code
        for c in (condition.code.coding if condition.code and condition.code.coding else [])
        if c.system == ICD10_SYSTEM and c.code
    ]
    if len(icd) != 1:
        problems.append({"field": f"{base}.code", "message": f"needs one coding of {ICD10_SYSTEM}"})
    else:
        args["disease"] = icd[0]
    status = _code(condition.verificationStatus)
    if status not in VERIFICATION:
        problems.append(
            {
                "field": f"{base}.verificationStatus",
                "message": f"must be one of {sorted(VERIFICATION)}",
            }
        )
    else:
        args["classification"] = VERIFICATION[status]
    if condition.onsetDateTime is None:
        problems.append({"field": f"{base}.onsetDateTime", "message": "required"})
    else:
        args["onset_date"] = _date_text(condition.onsetDateTime)
    if condition.recordedDate is None:
        problems.append(
            {"field": f"{base}.recordedDate", "message": "required (the diagnosis date)"}
        )
    else:
        args["diagnosis_date"] = _date_text(condition.recordedDate)
    pbase = f"bundle.entry[{p_index}].resource"
    region = _region(patient, pbase, problems)
    if region is not None:
        args["region"] = region
    person = _patient_fields(patient, pbase, problems)
    if problems:
        raise _problems(problems)
    return CaseSubmission(args=args, transient={"patient": person})


def from_lab_bundle(data: dict[str, Any]) -> Submission:
    """A ``report_lab_result`` call from a Bundle of a Patient and an Observation."""
    problems: list[dict[str, str]] = []
    picked = _pick(data, ("Patient", "Observation"), problems)
    p_index, patient, _ = picked["Patient"]
    o_index, observation, _ = picked["Observation"]
    base = f"bundle.entry[{o_index}].resource"
    subject = observation.subject.reference if observation.subject else None
    if subject not in _patient_refs(picked):
        problems.append({"field": f"{base}.subject", "message": "must reference the Patient"})
    if observation.status not in RESULT_STATUSES:
        problems.append({"field": f"{base}.status", "message": f"must be one of {RESULT_STATUSES}"})
    args: dict[str, Any] = {}
    loinc = _codes(observation.code, LOINC_SYSTEM)
    if len(loinc) != 1:
        problems.append({"field": f"{base}.code", "message": f"needs one coding of {LOINC_SYSTEM}"})
    else:
        args["test"] = loinc[0]
    result = _result(observation)
    if result is None:
        problems.append(
            {
                "field": f"{base}.valueCodeableConcept",
                "message": "a SNOMED CT result (detected, not detected, ...) or an "
                "interpretation (POS, NEG, IND) is required",
            }
        )
    else:
        args["result"] = result
    if observation.effectiveDateTime is None:
        problems.append({"field": f"{base}.effectiveDateTime", "message": "required (specimen)"})
    else:
        args["specimen_date"] = _date_text(observation.effectiveDateTime)
    if observation.issued is None:
        problems.append({"field": f"{base}.issued", "message": "required (result date)"})
    else:
        args["result_date"] = _date_text(observation.issued)
    pbase = f"bundle.entry[{p_index}].resource"
    region = _region(patient, pbase, problems)
    if region is not None:
        args["region"] = region
    person = _patient_fields(patient, pbase, problems)
    if problems:
        raise _problems(problems)
    return Submission("report_lab_result", args, {"patient": person})


def from_immunization_bundle(data: dict[str, Any]) -> Submission:
    """A ``record_vaccination`` call from a Bundle of a Patient and an Immunization."""
    problems: list[dict[str, str]] = []
    picked = _pick(data, ("Patient", "Immunization"), problems)
    p_index, patient, _ = picked["Patient"]
    i_index, immunization, _ = picked["Immunization"]
    base = f"bundle.entry[{i_index}].resource"
    subject = immunization.patient.reference if immunization.patient else None
    if subject not in _patient_refs(picked):
        problems.append({"field": f"{base}.patient", "message": "must reference the Patient"})
    if immunization.status != "completed":
        problems.append({"field": f"{base}.status", "message": "only completed doses"})
    args: dict[str, Any] = {}
    cvx = _codes(immunization.vaccineCode, CVX_SYSTEM)
    if len(cvx) != 1:
        problems.append(
            {"field": f"{base}.vaccineCode", "message": f"needs one coding of {CVX_SYSTEM}"}
        )
    else:
        args["vaccine"] = cvx[0]
    if immunization.occurrenceDateTime is None:
        problems.append({"field": f"{base}.occurrenceDateTime", "message": "required"})
    else:
        args["administered_date"] = _date_text(immunization.occurrenceDateTime)
    applied = immunization.protocolApplied[0] if immunization.protocolApplied else None
    dose = applied.doseNumberPositiveInt if applied is not None else None
    if applied is not None and dose is None:
        problems.append(
            {
                "field": f"{base}.protocolApplied[0].doseNumberPositiveInt",
                "message": "the dose number, a positive integer",
            }
        )
    args["dose_number"] = int(dose) if dose is not None else 1
    if immunization.lotNumber:
        args["lot"] = str(immunization.lotNumber)
    pbase = f"bundle.entry[{p_index}].resource"
    region = _region(patient, pbase, problems)
    if region is not None:
        args["region"] = region
    person = _patient_fields(patient, pbase, problems)
    if problems:
        raise _problems(problems)
    return Submission("record_vaccination", args, {"patient": person})


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
        text = name.text or " ".join([*(name.given or []), name.family or ""]).strip()
    if not text:
        problems.append({"field": f"{base}.name", "message": "required"})
    else:
        person["name"] = text
    identifiers = [
        (_code(i.type), i.value)
        for i in (patient.identifier or [])
        if i.value and _code(i.type) in ("NI", "PPN")
    ]
    if not identifiers:
        problems.append(
            {
                "field": f"{base}.identifier",
                "message": f"needs an identifier typed NI or PPN ({ID_TYPE_SYSTEM})",
            }
        )
    else:
        id_type, id_number = identifiers[0]
        person["id_type"], person["id_number"] = str(id_type), str(id_number)
    phones = [t.value for t in (patient.telecom or []) if t.system == "phone" and t.value]
    if phones:
        person["phone"] = phones[0]
    address = patient.address[0] if patient.address else None
    if address is not None:
        line = address.text or ", ".join([*(address.line or []), address.city or ""]).strip(", ")
        if line:
            person["address"] = line
    if patient.gender:
        person["sex"] = patient.gender
    if patient.birthDate:
        person["birth_date"] = str(patient.birthDate)
    return person


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
