"""The ``epidemic`` contract: notifiable case reports, their review, and who sees what.

Personal data never reaches the chain (ARCHITECTURE.md section 1): it arrives in the
transient map, goes to the reporting hospital's vault, and the chain gets the
pseudonymous id of :mod:`healthledger.apps.epidemic.pseudonym`. Reports are endorsed
by the CDC's peer, which holds the pseudonymisation key; every status change (a
review, an amendment answering a request for information) needs that endorsement too.

State keys::

    region/<code>                       GB/T 2260 region (define_regions)
    org/<org>                           {kind: hospital|cdc|commission, region}
    pseudonymisation                    {holder, scheme, version} (the key is in the vault)
    case/<case_id>                      the case record
    person/<pid>/<disease>/<case_id>    index: reports of one person and disease
    link/<case_id>/<other_case_id>      duplicate or re-infection link (both directions)
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired

from typing_extensions import TypedDict

from healthledger.apps.epidemic import pseudonym as pseudo
from healthledger.apps.epidemic.dates import day_number, day_of_ms
from healthledger.apps.epidemic.diseases import NOTIFIABLE_DISEASES, disease_for_icd10
from healthledger.apps.epidemic.regions import Region, RegionError, RegionTable
from healthledger.contracts.context import Context
from healthledger.contracts.contract import Contract, query, transaction
from healthledger.contracts.errors import AccessDenied, InvalidArguments, Rejected

COMMISSION_ORG = "gd-commission"
"""The demo consortium's health commission: configures regions and organisations."""
CDC_ORG = "gd-cdc"
"""The demo consortium's provincial CDC: holds the pseudonymisation key, endorses
reports and status changes."""
CDC_POLICY = f"AND('{CDC_ORG}.peer')"
CONFIG_POLICY = f"AND('{COMMISSION_ORG}.peer', '{CDC_ORG}.peer')"

REPORTING_ROLES = ("doctor", "lab")
REVIEW_ROLES = ("epidemiologist",)
DUPLICATE_WINDOW_DAYS = 90
"""Two reports of one person and disease with onsets this close are one episode."""
SMALL_COUNT = 5
"""Aggregate counts below this are suppressed for callers outside the region."""
PATIENT_COLLECTION = "epidemic-patients"
MAX_REGIONS = 5000

Classification = Literal["suspected", "probable", "confirmed"]
Outcome = Literal["under-treatment", "recovered", "died", "unknown"]
OrgKind = Literal["hospital", "cdc", "commission"]
RejectReason = Literal["not-a-case", "duplicate", "wrong-disease", "data-error"]
EarsMethod = Literal["C1", "C2", "C3"]
InfoField = Literal["classification", "onset_date", "diagnosis_date", "region", "lab-evidence"]


class RegionArg(TypedDict):
    """A region as ``define_regions`` takes it (see regions.Region)."""

    code: str
    name: str
    level: Literal["province", "city", "district"]
    parent: str | None
    lat_e6: NotRequired[int]
    lon_e6: NotRequired[int]


class FieldErrors:
    """Problems found in a call, raised together as InvalidArguments."""

    def __init__(self, function: str) -> None:
        self.function = function
        self.errors: list[dict[str, str]] = []

    def add(self, field: str, message: str) -> None:
        """Record one problem."""
        self.errors.append({"field": field, "message": message})

    def raise_if_any(self) -> None:
        """Raise InvalidArguments naming each field, if there were problems."""
        if self.errors:
            summary = "; ".join(f"{e['field']}: {e['message']}" for e in self.errors)
            raise InvalidArguments(f"invalid {self.function}: {summary}", self.errors)


class Epidemic(Contract):
    """Notifiable case reporting and review."""

    name = "epidemic"
    policy = "OR('*.peer')"

    # --- configuration -------------------------------------------------------------

    @transaction(policy=CONFIG_POLICY, roles=("admin", "officer"))
    def define_regions(self, ctx: Context, *, regions: list[RegionArg]) -> int:
        """Write the region table (the commission; replaces regions of the same code)."""
        _require_org(ctx, COMMISSION_ORG)
        if not 1 <= len(regions) <= MAX_REGIONS:
            raise InvalidArguments(f"between 1 and {MAX_REGIONS} regions per call")
        try:
            table = RegionTable(Region.from_json(dict(r)) for r in regions)
        except RegionError as exc:
            raise InvalidArguments(str(exc), [{"field": "regions", "message": str(exc)}]) from exc
        for region in table:
            ctx.put(f"region/{region.code}", region.to_json())
        ctx.emit("regions_defined", {"count": len(table)})
        return len(table)

    @transaction(policy=CONFIG_POLICY, roles=("admin", "officer"))
    def register_org(self, ctx: Context, *, org: str, kind: OrgKind, region: str) -> None:
        """Record an organisation's part in reporting and the region it serves."""
        _require_org(ctx, COMMISSION_ORG)
        if ctx.get(f"region/{region}") is None:
            raise InvalidArguments(
                f"unknown region {region}", [{"field": "region", "message": "unknown region"}]
            )
        ctx.put(f"org/{org}", {"kind": kind, "region": region})

    @transaction(policy=CDC_POLICY, roles=("admin",))
    def install_pseudonymisation_key(self, ctx: Context) -> dict[str, Any]:
        """Put the pseudonymisation key (transient ``key``, hex) in the CDC's vault."""
        _require_org(ctx, CDC_ORG)
        key_hex = ctx.transient.get("key")
        try:
            key = bytes.fromhex(key_hex) if isinstance(key_hex, str) else b""
        except ValueError:
            key = b""
        if len(key) < 32:
            raise InvalidArguments(
                "transient 'key' must be at least 32 bytes in hex",
                [{"field": "transient.key", "message": "at least 32 bytes, hex"}],
            )
        current = ctx.get("pseudonymisation")
        version = 1 if current is None else int(current["version"]) + 1
        collection = f"{CDC_ORG}/{pseudo.KEY_COLLECTION}"
        ctx.put_private(collection, pseudo.KEY_NAME, {"key": key.hex(), "version": version})
        record = {"holder": CDC_ORG, "scheme": pseudo.SCHEME, "version": version}
        ctx.put("pseudonymisation", record)
        return record

    # --- reporting -----------------------------------------------------------------

    @transaction(policy=CDC_POLICY, roles=REPORTING_ROLES)
    def report_case(
        self,
        ctx: Context,
        *,
        disease: str,
        classification: Classification,
        onset_date: int | str,
        diagnosis_date: int | str,
        region: str,
    ) -> dict[str, Any]:
        """Report a case; the patient's personal data comes in transient ``patient``."""
        reporter = _org_record(ctx, ctx.caller.org)
        if reporter is None or reporter["kind"] != "hospital":
            raise AccessDenied(f"{ctx.caller.org} is not a registered reporting hospital")
        problems = FieldErrors("report_case")
        disease_id, icd10 = _check_disease(disease, problems)
        today = day_of_ms(ctx.timestamp)
        onset, diagnosis = _check_dates(onset_date, diagnosis_date, today, problems)
        if ctx.get(f"region/{region}") is None:
            problems.add("region", "unknown region code")
        patient, identifier = _check_patient(ctx.transient.get("patient"), problems)
        problems.raise_if_any()
        assert disease_id is not None and onset is not None and diagnosis is not None

        key, key_version = _pseudonymisation_key(ctx)
        pid = pseudo.pseudonym(key, identifier)
        case_id = f"c-{ctx.tx_id[:24]}"
        links = _link_reports(ctx, pid=pid, disease_id=disease_id, case_id=case_id, onset=onset)
        ctx.put_private(f"{ctx.caller.org}/{PATIENT_COLLECTION}", case_id, {**patient, "pid": pid})
        record = {
            "case_id": case_id,
            "pid": pid,
            "pid_key_version": key_version,
            "disease": disease_id,
            "icd10": icd10,
            "classification": classification,
            "onset": onset,
            "diagnosis": diagnosis,
            "region": region,
            "reporter_org": ctx.caller.org,
            "reporter": ctx.caller.id,
            "reported_at": ctx.timestamp,
            "status": "reported",
            "outcome": {"value": "under-treatment", "day": diagnosis},
            "timeliness": {"diagnosis_to_report_days": today - diagnosis},
        }
        ctx.put(f"case/{case_id}", record)
        ctx.put(f"person/{pid}/{disease_id}/{case_id}", {"org": ctx.caller.org, "onset": onset})
        ctx.emit("case_reported", _public_event(record))
        for link in links:
            ctx.emit("duplicate_suspected" if link["kind"] == "duplicate" else "reinfection", link)
        return {"case_id": case_id, "links": links}

    @transaction(roles=REPORTING_ROLES)
    def update_outcome(
        self, ctx: Context, *, case_id: str, outcome: Outcome, outcome_date: int | str
    ) -> None:
        """Record the case's outcome (the reporting hospital)."""
        record = _own_case(ctx, case_id)
        if record["status"] == "rejected":
            raise Rejected(f"case {case_id} was rejected by the CDC")
        problems = FieldErrors("update_outcome")
        day = _date_field(outcome_date, "outcome_date", problems)
        if day is not None:
            if day > day_of_ms(ctx.timestamp):
                problems.add("outcome_date", "is in the future")
            elif day < record["onset"]:
                problems.add("outcome_date", "is before onset")
        problems.raise_if_any()
        assert day is not None
        ctx.put(f"case/{case_id}", {**record, "outcome": {"value": outcome, "day": day}})
        ctx.emit("case_outcome", {"case_id": case_id, "outcome": outcome, "day": day})

    @transaction(policy=CDC_POLICY, roles=REPORTING_ROLES)
    def amend_case(
        self,
        ctx: Context,
        *,
        case_id: str,
        classification: Classification,
        onset_date: int | str,
        diagnosis_date: int | str,
    ) -> None:
        """Answer the CDC's request for information; the case goes back to review."""
        record = _own_case(ctx, case_id)
        if record["status"] != "info-requested":
            raise Rejected(f"case {case_id} is {record['status']}; only info-requested is amended")
        problems = FieldErrors("amend_case")
        onset, diagnosis = _check_dates(
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
        ctx.emit("case_amended", _public_event(amended))

    # --- review --------------------------------------------------------------------

    @transaction(policy=CDC_POLICY, roles=REVIEW_ROLES)
    def confirm(self, ctx: Context, *, case_id: str) -> dict[str, Any]:
        """The CDC of the case's region confirms it."""
        return _review(ctx, case_id, "confirmed", {})

    @transaction(policy=CDC_POLICY, roles=REVIEW_ROLES)
    def reject(self, ctx: Context, *, case_id: str, reason: RejectReason) -> dict[str, Any]:
        """The CDC of the case's region rejects it, with a coded reason (no free text:
        free text invites personal data onto the chain)."""
        return _review(ctx, case_id, "rejected", {"reason": reason})

    @transaction(policy=CDC_POLICY, roles=REVIEW_ROLES)
    def request_info(
        self, ctx: Context, *, case_id: str, fields: list[InfoField]
    ) -> dict[str, Any]:
        """The CDC asks the reporting hospital to clarify ``fields``."""
        if not fields:
            raise InvalidArguments(
                "name at least one field", [{"field": "fields", "message": "empty"}]
            )
        return _review(ctx, case_id, "info-requested", {"fields": sorted(set(fields))})

    @transaction(policy=CDC_POLICY, roles=REVIEW_ROLES)
    def raise_alert(
        self,
        ctx: Context,
        *,
        disease: str,
        region: str,
        day: int,
        methods: list[EarsMethod],
        count: int,
        baseline_milli: int,
    ) -> dict[str, Any]:
        """A CDC records an early-warning alert for ``disease`` in a region of its area on
        ``day`` (the EARS ``methods`` that fired, the day's count and the baseline mean
        in thousandths). One alert per disease, region and day."""
        reviewer = _org_record(ctx, ctx.caller.org)
        if reviewer is None or reviewer["kind"] != "cdc":
            raise AccessDenied(f"{ctx.caller.org} is not a registered CDC")
        problems = FieldErrors("raise_alert")
        if disease not in {d.id for d in NOTIFIABLE_DISEASES}:
            problems.add("disease", "not a notifiable disease id")
        if ctx.get(f"region/{region}") is None:
            problems.add("region", "unknown region code")
        if not methods:
            problems.add("methods", "name at least one method")
        if count < 0 or baseline_milli < 0:
            problems.add("count", "counts cannot be negative")
        if day > day_of_ms(ctx.timestamp):
            problems.add("day", "in the future")
        problems.raise_if_any()
        if not _region_contains(ctx, reviewer["region"], region):
            raise AccessDenied(f"region {region} is not in the area of {ctx.caller.org}")
        key = f"alert/{disease}/{region}/{day}"
        if ctx.get(key) is not None:
            raise Rejected(f"an alert for {disease} in {region} on day {day} is already recorded")
        alert = {
            "disease": disease,
            "region": region,
            "day": day,
            "methods": sorted(set(methods)),
            "count": count,
            "baseline_milli": baseline_milli,
            "by": ctx.caller.id,
            "at": ctx.timestamp,
        }
        ctx.put(key, alert)
        ctx.emit("alert_raised", alert)
        return alert

    # --- queries -------------------------------------------------------------------

    @query()
    def get_case(self, ctx: Context, *, case_id: str) -> dict[str, Any]:
        """One case with its links, if the caller may see it."""
        record = ctx.get(f"case/{case_id}")
        if record is None or not _may_see(ctx, record):
            raise AccessDenied(f"no case {case_id} visible to {ctx.caller.id}")
        links = []
        for key, link in ctx.range(f"link/{case_id}/", f"link/{case_id}0"):
            other = ctx.get(f"case/{key.rsplit('/', 1)[1]}")
            if other is not None and _may_see(ctx, other):
                links.append(link)
        return {**record, "links": links}

    @query()
    def list_cases(
        self, ctx: Context, *, disease: str = "", status: str = "", limit: int = 100
    ) -> list[dict[str, Any]]:
        """Cases the caller may see (a hospital its own, a CDC or commission its region)."""
        if _scope(ctx) is None:
            raise AccessDenied(f"{ctx.caller.id} may see aggregates only")
        out = []
        for _, record in ctx.range("case/", "case0", limit=10_000):
            if disease and record["disease"] != disease:
                continue
            if status and record["status"] != status:
                continue
            if _may_see(ctx, record):
                out.append(record)
                if len(out) >= limit:
                    break
        return out

    @query()
    def aggregates(self, ctx: Context) -> list[dict[str, Any]]:
        """Counts of cases (rejected excluded) by disease, region and classification;
        counts below SMALL_COUNT are suppressed where the caller may not see the cases."""
        counts: dict[tuple[str, str, str], int] = {}
        visible: dict[tuple[str, str, str], bool] = {}
        for _, record in ctx.range("case/", "case0", limit=10_000):
            if record["status"] == "rejected":
                continue
            key = (record["disease"], record["region"], record["classification"])
            counts[key] = counts.get(key, 0) + 1
            visible[key] = visible.get(key, True) and _may_see(ctx, record)
        rows = []
        for (disease_id, region, classification), count in sorted(counts.items()):
            key = (disease_id, region, classification)
            row: dict[str, Any] = {
                "disease": disease_id,
                "region": region,
                "classification": classification,
            }
            if count < SMALL_COUNT and not visible[key]:
                row["suppressed"] = True
            else:
                row["count"] = count
            rows.append(row)
        return rows

    @query(roles=REPORTING_ROLES)
    def patient(self, ctx: Context, *, case_id: str) -> Any:
        """The reporting hospital's own personal data of a case, from its vault."""
        _own_case(ctx, case_id)
        return ctx.get_private(f"{ctx.caller.org}/{PATIENT_COLLECTION}", case_id)


# --- rules -------------------------------------------------------------------------


def _require_org(ctx: Context, org: str) -> None:
    if ctx.caller.org != org:
        raise AccessDenied(f"only {org} may make this call")


def _org_record(ctx: Context, org: str) -> dict[str, Any] | None:
    record = ctx.get(f"org/{org}")
    return record if isinstance(record, dict) else None


def _check_disease(code: str, problems: FieldErrors) -> tuple[str | None, str | None]:
    try:
        found = disease_for_icd10(code)
    except ValueError as exc:
        problems.add("disease", str(exc))
        return None, None
    return found.id, code.strip().upper()


def _date_field(value: int | str, field: str, problems: FieldErrors) -> int | None:
    try:
        return day_number(value)
    except ValueError as exc:
        problems.add(field, str(exc))
        return None


def _check_dates(
    onset_date: int | str, diagnosis_date: int | str, report_day: int, problems: FieldErrors
) -> tuple[int | None, int | None]:
    onset = _date_field(onset_date, "onset_date", problems)
    diagnosis = _date_field(diagnosis_date, "diagnosis_date", problems)
    if onset is not None and onset > report_day:
        problems.add("onset_date", "is after the report date (in the future)")
    if diagnosis is not None and diagnosis > report_day:
        problems.add("diagnosis_date", "is after the report date (in the future)")
    if onset is not None and diagnosis is not None and onset > diagnosis:
        problems.add("onset_date", "is after the diagnosis date")
    return onset, diagnosis


_PATIENT_TEXT = ("name", "phone", "address", "sex", "birth_date", "country")


def _check_patient(value: object, problems: FieldErrors) -> tuple[dict[str, str], str]:
    """The transient patient, checked; messages never echo the personal data."""
    if not isinstance(value, dict):
        problems.add("transient.patient", "required: the patient's personal data")
        return {}, ""
    patient: dict[str, str] = {}
    for field in ("id_type", "id_number", *_PATIENT_TEXT):
        item = value.get(field)
        if item is None:
            continue
        if not isinstance(item, str) or not item.strip() or len(item) > 500:
            problems.add(f"transient.patient.{field}", "must be a non-empty string")
        else:
            patient[field] = item
    for unknown in sorted(set(value) - {"id_type", "id_number", *_PATIENT_TEXT}):
        problems.add(f"transient.patient.{unknown}", "unknown field")
    if "name" not in patient:
        problems.add("transient.patient.name", "required")
    identifier = ""
    if "id_type" not in patient or "id_number" not in patient:
        problems.add("transient.patient.id_number", "id_type and id_number are required")
    else:
        try:
            identifier = pseudo.normalise_identifier(
                patient["id_type"], patient["id_number"], country=patient.get("country", "CHN")
            )
        except pseudo.IdentifierError as exc:
            problems.add("transient.patient.id_number", str(exc))
    return patient, identifier


def _pseudonymisation_key(ctx: Context) -> tuple[bytes, int]:
    """The key and its version; ids made under different versions never match."""
    entry = ctx.get_private(f"{CDC_ORG}/{pseudo.KEY_COLLECTION}", pseudo.KEY_NAME)
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
        raise Rejected("this peer holds no pseudonymisation key; the CDC's peer must endorse")
    return bytes.fromhex(entry["key"]), int(entry["version"])


def _link_reports(
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


def _public_event(record: dict[str, Any]) -> dict[str, Any]:
    """What a case event carries: no pseudonymous id, nothing personal."""
    keep = ("case_id", "disease", "classification", "onset", "diagnosis", "region", "status")
    return {k: record[k] for k in keep} | {"reporter_org": record["reporter_org"]}


def _scope(ctx: Context) -> tuple[str, str] | None:
    """("org", org) for a hospital, ("region", code) for a CDC or commission, None for
    everyone else (aggregates only)."""
    record = _org_record(ctx, ctx.caller.org)
    if record is None:
        return None
    if record["kind"] == "hospital":
        return ("org", ctx.caller.org)
    return ("region", record["region"])


def _region_contains(ctx: Context, ancestor: str, code: str) -> bool:
    current: str | None = code
    for _ in range(8):
        if current is None:
            return False
        if current == ancestor:
            return True
        region = ctx.get(f"region/{current}")
        current = region.get("parent") if isinstance(region, dict) else None
    return False


def _may_see(ctx: Context, record: dict[str, Any]) -> bool:
    scope = _scope(ctx)
    if scope is None:
        return False
    kind, value = scope
    if kind == "org":
        return bool(record["reporter_org"] == value)
    return _region_contains(ctx, value, record["region"])


def _own_case(ctx: Context, case_id: str) -> dict[str, Any]:
    record = ctx.get(f"case/{case_id}")
    if not isinstance(record, dict) or record["reporter_org"] != ctx.caller.org:
        raise AccessDenied(f"no case {case_id} reported by {ctx.caller.org}")
    return record


def _review(ctx: Context, case_id: str, decision: str, detail: dict[str, Any]) -> dict[str, Any]:
    reviewer = _org_record(ctx, ctx.caller.org)
    if reviewer is None or reviewer["kind"] != "cdc":
        raise AccessDenied(f"{ctx.caller.org} is not a registered CDC")
    record = ctx.get(f"case/{case_id}")
    if not isinstance(record, dict) or not _region_contains(
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


__all__ = ["CDC_ORG", "COMMISSION_ORG", "Epidemic"]
