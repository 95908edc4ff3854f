"""What a credential shows a verifier: a vaccination, a test result or a recovery, and
how each reads in the three encodings (an EU DCC group, a FHIR bundle for a SMART Health
Card, SD-JWT VC claims)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from healthledger.crypto.credentials.dcc_valuesets import (
    MANUFACTURER,
    TEST_RESULT,
    TEST_TYPE,
    VACCINE_PRODUCT,
)

COVID_19 = "840539006"
"""SNOMED CT: the disease or agent targeted."""
VCT = {
    "vaccination": "https://healthledger.example/credentials/vaccination/1",
    "test": "https://healthledger.example/credentials/test/1",
    "recovery": "https://healthledger.example/credentials/recovery/1",
}
"""The SD-JWT VC type of each kind of credential."""
CVX = {"EU/1/20/1528": "208", "EU/1/20/1507": "207", "EU/1/21/1529": "210",
       "EU/1/20/1525": "212", "EU/1/21/1618": "211", "BBIBP-CorV": "510",
       "CoronaVac": "511"}  # fmt: skip
"""CVX codes (the SMART Health Cards' vaccine coding) of the EU product codes."""
LOINC_TEST = {"LP6464-4": "94500-6", "LP217198-3": "94558-4"}
"""The LOINC observation codes of the DCC test types (NAAT, rapid antigen)."""
SNOMED_RESULT = {False: "260415000", True: "260373001"}


@dataclass(frozen=True, kw_only=True)
class Holder:
    """The person a credential is about, as the standards require it shown."""

    family_name: str
    given_name: str
    birth_date: str
    """ISO 8601 date."""


@dataclass(frozen=True, kw_only=True)
class Issued:
    """Who issued a credential, where, under which unique certificate identifier."""

    country: str
    certificate_issuer: str
    uci: str
    """``URN:UVCI:01:CN:...``."""


@dataclass(frozen=True, kw_only=True)
class Vaccination(Holder, Issued):
    """One vaccination dose."""

    product: str
    """EU product code (``EU/1/20/1528``)."""
    manufacturer: str
    """Manufacturer code (``ORG-100030215``)."""
    dose: int
    doses: int
    date: str


@dataclass(frozen=True, kw_only=True)
class TestResult(Holder, Issued):
    """One SARS-CoV-2 test."""

    __test__ = False  # not a pytest test class

    test_type: str
    """``LP6464-4`` (NAAT) or ``LP217198-3`` (rapid antigen)."""
    detected: bool
    collected_at: str
    """RFC 3339 time of sample collection."""
    centre: str


@dataclass(frozen=True, kw_only=True)
class Recovery(Holder, Issued):
    """A recovery after a first positive test."""

    first_positive: str
    valid_from: str
    valid_until: str


Record = Vaccination | TestResult | Recovery


def kind(record: Record) -> str:
    """``vaccination``, ``test`` or ``recovery``."""
    if isinstance(record, Vaccination):
        return "vaccination"
    return "test" if isinstance(record, TestResult) else "recovery"


def transliterate(name: str) -> str:
    """The ICAO 9303 machine-readable form of a name (A-Z and ``<``), as the DCC asks."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(c if c.isalpha() else "<" for c in ascii_name.upper())[:80]


def dcc_payload(record: Record) -> dict[str, Any]:
    """The DCC (schema 1.3.0) of a record: its ``v``, ``t`` or ``r`` group."""
    issued = {"co": record.country, "is": record.certificate_issuer, "ci": record.uci}
    if isinstance(record, Vaccination):
        group = "v", {"tg": COVID_19, "vp": "1119349007", "mp": record.product,
                      "ma": record.manufacturer, "dn": record.dose, "sd": record.doses,
                      "dt": record.date}  # fmt: skip
    elif isinstance(record, TestResult):
        group = "t", {"tg": COVID_19, "tt": record.test_type, "sc": record.collected_at,
                      "tr": SNOMED_RESULT[record.detected], "tc": record.centre}  # fmt: skip
    else:
        group = "r", {"tg": COVID_19, "fr": record.first_positive, "df": record.valid_from,
                      "du": record.valid_until}  # fmt: skip
    return {
        "ver": "1.3.0",
        "nam": {"fn": record.family_name, "fnt": transliterate(record.family_name),
                "gn": record.given_name, "gnt": transliterate(record.given_name)},
        "dob": record.birth_date,
        group[0]: [{**group[1], **issued}],
    }  # fmt: skip


def fhir_bundle(record: Vaccination | TestResult) -> dict[str, Any]:
    """The minimal FHIR R4 bundle a SMART Health Card carries for a vaccination (an
    Immunization) or a test (an Observation). SMART Health Cards define no recovery card."""
    patient = {"resourceType": "Patient", "birthDate": record.birth_date,
               "name": [{"family": record.family_name, "given": [record.given_name]}]}  # fmt: skip
    performer = [{"actor": {"display": record.certificate_issuer}}]
    if isinstance(record, Vaccination):
        fact: dict[str, Any] = {
            "resourceType": "Immunization", "status": "completed",
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx",
                                        "code": CVX.get(record.product, "213")}]},
            "patient": {"reference": "resource:0"}, "occurrenceDateTime": record.date,
            "performer": performer,
        }  # fmt: skip
    else:
        fact = {
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org",
                                 "code": LOINC_TEST.get(record.test_type, "94500-6")}]},
            "subject": {"reference": "resource:0"}, "effectiveDateTime": record.collected_at,
            "performer": [{"display": record.centre}],
            "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct",
                                                 "code": SNOMED_RESULT[record.detected]}]},
        }  # fmt: skip
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "resource:0", "resource": patient},
            {"fullUrl": "resource:1", "resource": fact},
        ],
    }


def shc_types(record: Vaccination | TestResult) -> list[str]:
    """The SMART Health Cards ``vc.type`` entries beyond ``health-card``."""
    if isinstance(record, Vaccination):
        return ["https://smarthealth.cards#immunization"]
    return ["https://smarthealth.cards#laboratory"]


def vc_claims(record: Record) -> dict[str, Any]:
    """The SD-JWT VC claims of a record, flat so that each is one Disclosure and the whole
    credential still fits one QR code."""
    holder = {"family_name": record.family_name, "given_name": record.given_name,
              "birthdate": record.birth_date, "target": "COVID-19"}  # fmt: skip
    if isinstance(record, Vaccination):
        return {**holder,
                "vaccine": VACCINE_PRODUCT.get(record.product, record.product),
                "manufacturer": MANUFACTURER.get(record.manufacturer, record.manufacturer),
                "dose": record.dose, "doses": record.doses,
                "vaccination_date": record.date, "country": record.country}  # fmt: skip
    if isinstance(record, TestResult):
        return {**holder, "test_type": TEST_TYPE.get(record.test_type, record.test_type),
                "result": TEST_RESULT[SNOMED_RESULT[record.detected]],
                "collected_at": record.collected_at, "test_centre": record.centre,
                "country": record.country}  # fmt: skip
    return {**holder, "first_positive": record.first_positive, "valid_from": record.valid_from,
            "valid_until": record.valid_until, "country": record.country}  # fmt: skip
