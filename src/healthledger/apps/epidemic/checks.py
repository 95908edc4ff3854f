"""Checks the epidemic contract's functions share: who the caller's organisation is,
dates, the transient patient and the pseudonymisation key. Problems in a call are
collected and raised together, naming each field."""

from __future__ import annotations

from typing import Any

from healthledger.apps.epidemic import pseudonym as pseudo
from healthledger.apps.epidemic.dates import day_number
from healthledger.contracts.context import Context
from healthledger.contracts.errors import AccessDenied, InvalidArguments, Rejected

COMMISSION_ORG = "gd-commission"
"""The demo consortium's health commission: configures regions and organisations."""
CDC_ORG = "gd-cdc"
"""The demo consortium's provincial CDC: holds the pseudonymisation key, endorses
reports and status changes."""
PATIENT_COLLECTION = "epidemic-patients"
"""Each reporting organisation's vault collection of personal data."""
KIND_NAMES = {"hospital": "reporting hospital", "cdc": "CDC", "commission": "commission"}


class FieldErrors:
    """Problems found in a call, raised together as InvalidArguments."""

    def __init__(self, function: str, prefix: str = "") -> None:
        self.function = function
        self.prefix = prefix
        self.errors: list[dict[str, str]] = []

    def add(self, field: str, message: str) -> None:
        """Record one problem."""
        self.errors.append({"field": self.prefix + field, "message": message})

    def raise_if_any(self) -> None:
        """Raise InvalidArguments naming each field, if there were problems."""
        if self.errors:
            summary = "; ".join(f"{e['field']}: {e['message']}" for e in self.errors)
            raise InvalidArguments(f"invalid {self.function}: {summary}", self.errors)


def require_org(ctx: Context, org: str) -> None:
    """AccessDenied unless the caller belongs to ``org``."""
    if ctx.caller.org != org:
        raise AccessDenied(f"only {org} may make this call")


def org_record(ctx: Context, org: str) -> dict[str, Any] | None:
    """The organisation's part in reporting (``{kind, region}``), or None."""
    record = ctx.get(f"org/{org}")
    return record if isinstance(record, dict) else None


def require_kind(ctx: Context, *kinds: str) -> dict[str, Any]:
    """The caller's organisation record; AccessDenied unless it is of one of ``kinds``."""
    record = org_record(ctx, ctx.caller.org)
    if record is None or record["kind"] not in kinds:
        named = " or ".join(KIND_NAMES.get(kind, kind) for kind in kinds)
        raise AccessDenied(f"{ctx.caller.org} is not a registered {named}")
    return record


def date_field(value: int | str, field: str, problems: FieldErrors) -> int | None:
    """The day number of a date argument, or None with the problem recorded."""
    try:
        return day_number(value)
    except ValueError as exc:
        problems.add(field, str(exc))
        return None


def check_dates(
    onset_date: int | str, diagnosis_date: int | str, report_day: int, problems: FieldErrors
) -> tuple[int | None, int | None]:
    """Onset and diagnosis days: neither after ``report_day``, onset not after diagnosis."""
    onset = date_field(onset_date, "onset_date", problems)
    diagnosis = date_field(diagnosis_date, "diagnosis_date", problems)
    if onset is not None and onset > report_day:
        problems.add("onset_date", "is after the report date (in the future)")
    if diagnosis is not None and diagnosis > report_day:
        problems.add("diagnosis_date", "is after the report date (in the future)")
    if onset is not None and diagnosis is not None and onset > diagnosis:
        problems.add("onset_date", "is after the diagnosis date")
    return onset, diagnosis


def check_day_order(
    earlier: int | str,
    later: int | str,
    names: tuple[str, str],
    today: int,
    problems: FieldErrors,
) -> tuple[int | None, int | None]:
    """Two dates (e.g. specimen and result) that must not be in the future, the first
    not after the second."""
    first = date_field(earlier, names[0], problems)
    second = date_field(later, names[1], problems)
    for day, name in ((first, names[0]), (second, names[1])):
        if day is not None and day > today:
            problems.add(name, "is in the future")
    if first is not None and second is not None and first > second:
        problems.add(names[0], f"is after {names[1]}")
    return first, second


PATIENT_TEXT = ("name", "phone", "address", "sex", "birth_date", "country", "id_system")
RESIDENCE_UNKNOWN = "residence-unknown"
"""Flag of a record placed at the reporting organisation's region: the person's own
region (GB/T 2260 district) was not given."""
KNOWN_BY_DEMOGRAPHICS = "identified-by-name-and-birth-date"
"""Flag of a record whose person came with no identifier (see pseudonym.py)."""


def check_patient(value: object, problems: FieldErrors) -> tuple[dict[str, str], str]:
    """The transient patient, checked, and its normalised identifier; messages never
    echo the personal data."""
    if not isinstance(value, dict):
        problems.add("transient.patient", "required: the patient's personal data")
        return {}, ""
    patient: dict[str, str] = {}
    for field in ("id_type", "id_number", *PATIENT_TEXT):
        item = value.get(field)
        if item is None:
            continue
        if not isinstance(item, str) or not item.strip() or len(item) > 500:
            problems.add(f"transient.patient.{field}", "must be a non-empty string")
        else:
            patient[field] = item
    for unknown in sorted(set(value) - {"id_type", "id_number", *PATIENT_TEXT}):
        problems.add(f"transient.patient.{unknown}", "unknown field")
    if "name" not in patient:
        problems.add("transient.patient.name", "required")
    identifier = ""
    try:
        if "id_type" in patient and "id_number" in patient:
            identifier = pseudo.normalise_identifier(
                patient["id_type"],
                patient["id_number"],
                country=patient.get("country", "CHN"),
                system=patient.get("id_system"),
            )
        elif "id_type" in patient or "id_number" in patient:
            problems.add("transient.patient.id_number", "id_type and id_number go together")
        elif "name" in patient:
            identifier = pseudo.demographic_identifier(
                patient["name"], patient.get("birth_date", "")
            )
    except pseudo.IdentifierError as exc:
        problems.add("transient.patient.id_number", str(exc))
    return patient, identifier


def patient_flags(identifier: str) -> list[str]:
    """The flags a record takes from how its person was identified."""
    return [KNOWN_BY_DEMOGRAPHICS] if identifier.startswith(pseudo.DEMOGRAPHIC + ":") else []


def placed(
    region: str, reporter: dict[str, Any], regions: RegionCheck, problems: FieldErrors
) -> tuple[str, list[str]]:
    """A record's region and flags: ``region`` if given (refused if unknown), else the
    reporting organisation's region, flagged residence unknown."""
    if not region:
        return str(reporter["region"]), [RESIDENCE_UNKNOWN]
    if not regions.known(region):
        problems.add("region", "unknown region code")
    return region, []


def pseudonymisation_key(ctx: Context) -> tuple[bytes, int]:
    """The key and its version; ids made under different versions never match."""
    entry = ctx.get_private(f"{CDC_ORG}/{pseudo.KEY_COLLECTION}", pseudo.KEY_NAME)
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
        raise Rejected("this peer holds no pseudonymisation key; the CDC's peer must endorse")
    return bytes.fromhex(entry["key"]), int(entry["version"])


class RegionCheck:
    """Region codes known on chain, each read once per call."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._known: dict[str, bool] = {}

    def known(self, code: str) -> bool:
        """True if ``code`` is in the region table."""
        if code not in self._known:
            self._known[code] = self._ctx.get(f"region/{code}") is not None
        return self._known[code]
