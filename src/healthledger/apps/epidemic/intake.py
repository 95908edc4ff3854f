"""Case reports as they arrive, a plain form or a FHIR R4 Bundle, turned into the
same ``epidemic.report_case`` call: public arguments and a transient patient.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pydantic
from fhir.resources.R4B.bundle import Bundle

from healthledger.contracts.errors import InvalidArguments

ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
ID_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"
VERIFICATION = {"provisional": "suspected", "differential": "probable", "confirmed": "confirmed"}


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


def from_fhir_bundle(data: dict[str, Any]) -> CaseSubmission:
    """The submission of a FHIR R4 Bundle; InvalidArguments naming each bad field."""
    try:
        bundle = Bundle.model_validate(data)
    except pydantic.ValidationError as exc:
        raise _invalid("bundle", exc) from exc
    problems: list[dict[str, str]] = []
    found: dict[str, list[tuple[int, Any, str | None]]] = {}
    for i, entry in enumerate(bundle.entry or []):
        resource = entry.resource
        if resource is not None:
            found.setdefault(resource.get_resource_type(), []).append((i, resource, entry.fullUrl))
    picked: dict[str, tuple[int, Any, str | None]] = {}
    for kind in ("Patient", "Condition", "Encounter"):
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
    if len(picked) < 3:
        raise _problems(problems)
    p_index, patient, patient_url = picked["Patient"]
    c_index, condition, _ = picked["Condition"]
    e_index, encounter, _ = picked["Encounter"]
    refs = {r for r in (patient_url, f"Patient/{patient.id}" if patient.id else None) if r}
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
    address = patient.address[0] if patient.address else None
    if address is None or not address.district:
        problems.append(
            {
                "field": f"{pbase}.address[0].district",
                "message": "required: the GB/T 2260 region code",
            }
        )
    else:
        args["region"] = address.district
    person = _patient_fields(patient, pbase, problems)
    if problems:
        raise _problems(problems)
    return CaseSubmission(args=args, transient={"patient": person})


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
    return InvalidArguments(f"invalid case report: {summary}", problems)
