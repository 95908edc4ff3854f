"""The ``epidemic`` contract: notifiable case reports, lab results and vaccinations,
their review, recorded access grants, early-warning alerts and public releases.

Personal data never reaches the chain (ARCHITECTURE.md section 1): it arrives in the
transient map, goes to the reporting hospital's vault, and the chain gets the
pseudonymous id of :mod:`healthledger.apps.epidemic.pseudonym`. Reports are endorsed
by the CDC's peer, which holds the pseudonymisation key; every status change (a
review, an amendment answering a request for information) needs that endorsement too.

State keys::

    region/<code>                       GB/T 2260 region (define_regions)
    population/<code>                   {population, source, year} (define_population)
    org/<org>                           {kind: hospital|cdc|commission, region}
    pseudonymisation                    {holder, scheme, version} (the key is in the vault)
    case/<case_id>                      the case record
    status/<status>/<case_id>           index: cases by status (see status_index.py)
    person/<pid>/<disease>/<case_id>    index: reports of one person and disease
    link/<case_id>/<other_case_id>      duplicate or re-infection link (both directions)
    lab/..., vaccination/..., dose/...  see observations.py
    grant/<grantee>/<grant_id>          see visibility.py
    alert/<disease>/<region>/<day>      an early-warning alert
    release/<day>                       a public release under differential privacy
"""

from __future__ import annotations

from typing import Any

from healthledger.apps.epidemic import (
    acknowledgement,
    bundles,
    cases,
    observations,
    reads,
    visibility,
)
from healthledger.apps.epidemic import pseudonym as pseudo
from healthledger.apps.epidemic.cases import own_case, record_reports, review
from healthledger.apps.epidemic.checks import (
    CDC_ORG,
    COMMISSION_ORG,
    PATIENT_COLLECTION,
    FieldErrors,
    RegionCheck,
    require_kind,
    require_org,
)
from healthledger.apps.epidemic.dates import day_of_ms
from healthledger.apps.epidemic.diseases import NOTIFIABLE_DISEASES
from healthledger.apps.epidemic.observations import VACCINATING_ROLES, TestResult
from healthledger.apps.epidemic.regions import Region, RegionError, RegionTable
from healthledger.apps.epidemic.schemas import (
    AlertAction,
    BundleCaseArg,
    BundleDoseArg,
    BundleLabArg,
    CaseArg,
    CaseStatus,
    Classification,
    EarsMethod,
    GrantPurpose,
    InfoField,
    ObservationKind,
    OrgKind,
    Outcome,
    PopulationArg,
    QueueOrder,
    RegionArg,
    RejectReason,
    ReleaseRow,
)
from healthledger.apps.epidemic.subjects import subject_facts as facts_of
from healthledger.apps.epidemic.visibility import OVERSEEING_KINDS, Viewer, region_contains
from healthledger.contracts.context import Context
from healthledger.contracts.contract import Contract, query, transaction
from healthledger.contracts.errors import AccessDenied, InvalidArguments, Rejected

CDC_POLICY = f"AND('{CDC_ORG}.peer')"
CONFIG_POLICY = f"AND('{COMMISSION_ORG}.peer', '{CDC_ORG}.peer')"

HOSPITAL_KINDS = ("hospital",)
CDC_KINDS = ("cdc",)
COMMISSION_KINDS = ("commission",)
"""Who configures regions, populations and reporting organisations (the configuration
policy also needs the CDC's peer to endorse)."""
REPORTING_ROLES = ("doctor", "lab")
BUNDLE_ROLES = ("doctor", "lab", "nurse")
REVIEW_ROLES = ("epidemiologist",)
GRANT_ROLES = ("admin", "officer", "epidemiologist")
SMALL_COUNT = 5
"""Aggregate counts below this are suppressed for callers outside the region."""
MAX_REGIONS = 5000
MAX_BATCH = 500
"""Reports in one ``report_cases`` transaction."""
MAX_RELEASE_ROWS = 5000


class Epidemic(Contract):
    """Notifiable case reporting and review."""

    name = "epidemic"
    code_modules = (
        "healthledger.apps.epidemic.acknowledgement",
        "healthledger.apps.epidemic.bundles",
        "healthledger.apps.epidemic.cases",
        "healthledger.apps.epidemic.checks",
        "healthledger.apps.epidemic.dates",
        "healthledger.apps.epidemic.diseases",
        "healthledger.apps.epidemic.observations",
        "healthledger.apps.epidemic.pseudonym",
        "healthledger.apps.epidemic.reads",
        "healthledger.apps.epidemic.recent_index",
        "healthledger.apps.epidemic.regions",
        "healthledger.apps.epidemic.schemas",
        "healthledger.apps.epidemic.status_index",
        "healthledger.apps.epidemic.subjects",
        "healthledger.apps.epidemic.visibility",
    )
    policy = "OR('*.peer')"

    # --- configuration -------------------------------------------------------------

    @transaction(policy=CONFIG_POLICY, roles=("admin", "officer"), kinds=COMMISSION_KINDS)
    def define_regions(self, ctx: Context, *, regions: list[RegionArg]) -> int:
        """Write the region table (the commission; replaces regions of the same code)."""
        require_org(ctx, COMMISSION_ORG)
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

    @transaction(policy=CONFIG_POLICY, roles=("admin", "officer"), kinds=COMMISSION_KINDS)
    def define_population(
        self, ctx: Context, *, populations: list[PopulationArg], source: str, year: int
    ) -> int:
        """Record regions' resident populations (the denominators of vaccination
        coverage) with their ``source`` and reference ``year`` (the commission)."""
        require_org(ctx, COMMISSION_ORG)
        problems = FieldErrors("define_population")
        if not 1 <= len(populations) <= MAX_REGIONS:
            problems.add("populations", f"between 1 and {MAX_REGIONS} regions per call")
        if not 3 <= len(source.strip()) <= 200:
            problems.add("source", "name the source in 3 to 200 characters")
        if not 1950 <= year <= 2100:
            problems.add("year", "a year from 1950 to 2100")
        check = RegionCheck(ctx)
        for i, item in enumerate(populations):
            if not check.known(item["region"]):
                problems.add(f"populations[{i}].region", "unknown region code")
            if not 1 <= item["population"] <= 2_000_000_000:
                problems.add(f"populations[{i}].population", "must be positive")
        problems.raise_if_any()
        for item in populations:
            record = {"population": item["population"], "source": source.strip(), "year": year}
            ctx.put(f"population/{item['region']}", record)
        ctx.emit("population_defined", {"count": len(populations), "source": source.strip()})
        return len(populations)

    @transaction(policy=CONFIG_POLICY, roles=("admin", "officer"), kinds=COMMISSION_KINDS)
    def register_org(self, ctx: Context, *, org: str, kind: OrgKind, region: str) -> None:
        """Record an organisation's part in reporting and the region it serves."""
        require_org(ctx, COMMISSION_ORG)
        if ctx.get(f"region/{region}") is None:
            raise InvalidArguments(
                f"unknown region {region}", [{"field": "region", "message": "unknown region"}]
            )
        ctx.put(f"org/{org}", {"kind": kind, "region": region})

    @transaction(policy=CDC_POLICY, roles=("admin",), kinds=CDC_KINDS)
    def install_pseudonymisation_key(self, ctx: Context) -> dict[str, Any]:
        """Put the pseudonymisation key (transient ``key``, hex) in the CDC's vault."""
        require_org(ctx, CDC_ORG)
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

    @transaction(policy=CDC_POLICY, roles=REPORTING_ROLES, kinds=HOSPITAL_KINDS)
    def report_case(
        self,
        ctx: Context,
        *,
        disease: str,
        classification: Classification,
        onset_date: int | str,
        diagnosis_date: int | str,
        region: str = "",
    ) -> dict[str, Any]:
        """Report a case; the patient's personal data comes in transient ``patient``.
        Without ``region`` (the person's district unknown) the case is placed at the
        reporting organisation's region and flagged ``residence-unknown``."""
        reports = [
            CaseArg(
                disease=disease,
                classification=classification,
                onset_date=onset_date,
                diagnosis_date=diagnosis_date,
                region=region,
            )
        ]
        return record_reports(ctx, reports, [ctx.transient.get("patient")], batch=False)[0]

    @transaction(policy=CDC_POLICY, roles=REPORTING_ROLES, kinds=HOSPITAL_KINDS)
    def report_cases(self, ctx: Context, *, reports: list[CaseArg]) -> list[dict[str, Any]]:
        """Report up to MAX_BATCH cases in one transaction, all or nothing: each checked
        as ``report_case`` checks one (problems named ``reports[i].field``); the
        patients come in transient ``patients``, one per report, in order."""
        if not 1 <= len(reports) <= MAX_BATCH:
            raise InvalidArguments(
                f"between 1 and {MAX_BATCH} reports per call",
                [{"field": "reports", "message": f"1 to {MAX_BATCH} reports"}],
            )
        patients = ctx.transient.get("patients")
        if not isinstance(patients, list) or len(patients) != len(reports):
            raise InvalidArguments(
                "transient 'patients' must list one patient per report",
                [{"field": "transient.patients", "message": "one patient per report"}],
            )
        return record_reports(ctx, reports, patients, batch=True)

    @transaction(policy=CDC_POLICY, roles=REPORTING_ROLES, kinds=HOSPITAL_KINDS)
    def report_lab_result(
        self,
        ctx: Context,
        *,
        test: str,
        result: TestResult,
        specimen_date: int | str,
        result_date: int | str,
        region: str = "",
    ) -> dict[str, Any]:
        """Report a test result (LOINC ``test``); the patient comes in transient
        ``patient`` and the region as for a case."""
        return observations.record_lab_result(
            ctx,
            test=test,
            result=result,
            specimen_date=specimen_date,
            result_date=result_date,
            region=region,
        )

    @transaction(policy=CDC_POLICY, roles=VACCINATING_ROLES, kinds=HOSPITAL_KINDS)
    def record_vaccination(
        self,
        ctx: Context,
        *,
        vaccine: str,
        dose_number: int,
        administered_date: int | str,
        region: str = "",
        lot: str = "",
    ) -> dict[str, Any]:
        """Record a dose given (CVX ``vaccine``); the patient comes in transient
        ``patient``. A dose given through the supply application is linked from its
        event instead, never recorded again here."""
        return observations.record_vaccination(
            ctx,
            vaccine=vaccine,
            dose_number=dose_number,
            administered_date=administered_date,
            region=region,
            lot=lot,
        )

    @transaction(
        policy=CDC_POLICY,
        roles=BUNDLE_ROLES,
        kinds=HOSPITAL_KINDS,
        relation="cases and lab results by a doctor or lab, doses by a doctor or nurse",
    )
    def report_bundle(
        self,
        ctx: Context,
        *,
        cases: list[BundleCaseArg],
        labs: list[BundleLabArg],
        doses: list[BundleDoseArg],
    ) -> dict[str, Any]:
        """Record the case reports, lab results and doses of one report (a FHIR Bundle)
        together, all or nothing; the people come once each in transient ``patients``
        and each record names its own by index (see bundles.py)."""
        return bundles.record_bundle(ctx, cases=cases, labs=labs, doses=doses)

    @transaction(roles=REPORTING_ROLES, kinds=HOSPITAL_KINDS)
    def update_outcome(
        self, ctx: Context, *, case_id: str, outcome: Outcome, outcome_date: int | str
    ) -> None:
        """Record the case's outcome (the reporting hospital)."""
        cases.record_outcome(ctx, case_id, outcome, outcome_date)

    @transaction(policy=CDC_POLICY, roles=REPORTING_ROLES, kinds=HOSPITAL_KINDS)
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
        cases.amend(ctx, case_id, classification, onset_date, diagnosis_date)

    # --- review --------------------------------------------------------------------

    @transaction(policy=CDC_POLICY, roles=REVIEW_ROLES, kinds=CDC_KINDS)
    def confirm(self, ctx: Context, *, case_id: str) -> dict[str, Any]:
        """The CDC of the case's region confirms it."""
        return review(ctx, case_id, "confirmed", {})

    @transaction(policy=CDC_POLICY, roles=REVIEW_ROLES, kinds=CDC_KINDS)
    def reject(self, ctx: Context, *, case_id: str, reason: RejectReason) -> dict[str, Any]:
        """The CDC of the case's region rejects it, with a coded reason (no free text:
        free text invites personal data onto the chain)."""
        return review(ctx, case_id, "rejected", {"reason": reason})

    @transaction(policy=CDC_POLICY, roles=REVIEW_ROLES, kinds=CDC_KINDS)
    def request_info(
        self, ctx: Context, *, case_id: str, fields: list[InfoField]
    ) -> dict[str, Any]:
        """The CDC asks the reporting hospital to clarify ``fields``."""
        if not fields:
            raise InvalidArguments(
                "name at least one field", [{"field": "fields", "message": "empty"}]
            )
        return review(ctx, case_id, "info-requested", {"fields": sorted(set(fields))})

    @transaction(policy=CDC_POLICY, roles=REVIEW_ROLES, kinds=CDC_KINDS)
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
        reviewer = require_kind(ctx, "cdc")
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
        if not region_contains(ctx, reviewer["region"], region):
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

    @transaction(policy=CDC_POLICY, roles=REVIEW_ROLES, kinds=CDC_KINDS)
    def acknowledge_alert(
        self, ctx: Context, *, disease: str, region: str, day: int, action: AlertAction
    ) -> dict[str, Any]:
        """A CDC of the alert's area acknowledges it with the (coded) action it takes."""
        return acknowledgement.acknowledge(
            ctx, disease=disease, region=region, day=day, action=action
        )

    @transaction(policy=CDC_POLICY, roles=REVIEW_ROLES, kinds=CDC_KINDS)
    def record_release(
        self,
        ctx: Context,
        *,
        day: int,
        epsilon_milli: int,
        suppress_below: int,
        mechanism: str,
        rows: list[ReleaseRow],
    ) -> dict[str, Any]:
        """A CDC records a day's public release under differential privacy (the noisy
        counts as published, ε in thousandths), so that it is served again rather than
        made again. One release per day; suppressed cells carry no count."""
        require_kind(ctx, "cdc")
        problems = FieldErrors("record_release")
        if day > day_of_ms(ctx.timestamp):
            problems.add("day", "in the future")
        if not 1 <= epsilon_milli <= 10_000:
            problems.add("epsilon_milli", "ε from 0.001 to 10")
        if not 0 <= suppress_below <= 1000:
            problems.add("suppress_below", "0 to 1000")
        if not 3 <= len(mechanism) <= 200:
            problems.add("mechanism", "name the mechanism in 3 to 200 characters")
        if len(rows) > MAX_RELEASE_ROWS:
            problems.add("rows", f"at most {MAX_RELEASE_ROWS}")
        for i, row in enumerate(rows):
            count = row["count"]
            if count is not None and count < suppress_below:
                problems.add(f"rows[{i}].count", "below the suppression threshold")
        problems.raise_if_any()
        key = f"release/{day}"
        if ctx.get(key) is not None:
            raise Rejected(f"the release of day {day} is already recorded")
        release = {
            "day": day,
            "epsilon_milli": epsilon_milli,
            "suppress_below": suppress_below,
            "mechanism": mechanism,
            "rows": [dict(row) for row in rows],
            "by": ctx.caller.id,
            "at": ctx.timestamp,
        }
        ctx.put(key, release)
        ctx.emit("release_recorded", {"day": day, "epsilon_milli": epsilon_milli})
        return release

    # --- access grants -------------------------------------------------------------

    @transaction(policy=CDC_POLICY, roles=GRANT_ROLES, kinds=OVERSEEING_KINDS)
    def grant_access(
        self,
        ctx: Context,
        *,
        grantee: str,
        regions: list[str],
        until_date: int | str,
        purpose: GrantPurpose,
        reference: str = "",
    ) -> dict[str, Any]:
        """A CDC or commission grants another the detail of ``regions`` of its own area
        until ``until_date`` inclusive, for a coded ``purpose`` (``reference``: a file
        number, at most 40 letters, digits or hyphens)."""
        return visibility.grant(
            ctx,
            grantee=grantee,
            regions=regions,
            until_date=until_date,
            purpose=purpose,
            reference=reference,
        )

    @transaction(policy=CDC_POLICY, roles=GRANT_ROLES, kinds=OVERSEEING_KINDS)
    def revoke_grant(self, ctx: Context, *, grantee: str, grant_id: str) -> dict[str, Any]:
        """Revoke a grant (its grantor organisation or the commission)."""
        return visibility.revoke(ctx, grantee=grantee, grant_id=grant_id)

    # --- queries -------------------------------------------------------------------

    @query()
    def get_case(self, ctx: Context, *, case_id: str) -> dict[str, Any]:
        """One case with its links, if the caller may see it."""
        return reads.case(ctx, case_id)

    @query()
    def list_cases(
        self, ctx: Context, *, disease: str = "", status: str = "", limit: int = 100
    ) -> list[dict[str, Any]]:
        """Cases the caller may see (a hospital its own, a CDC or commission its region
        and the regions granted to it), in case id order (``reads.cases``)."""
        return reads.cases(ctx, disease=disease, status=status, limit=limit)

    @query()
    def case_queue(
        self,
        ctx: Context,
        *,
        statuses: list[CaseStatus],
        order: QueueOrder,
        limit: int = 50,
        after: str = "",
        disease: str = "",
    ) -> dict[str, Any]:
        """A page of the cases the caller may see in ``statuses``, with their total
        (``reads.queue``)."""
        return reads.queue(ctx, statuses, order, limit=limit, after=after, disease=disease)

    @query()
    def case_counts(self, ctx: Context, *, disease: str = "") -> dict[str, int]:
        """How many cases the caller may see in each status (of ``disease`` if given)."""
        return reads.counts(ctx, disease=disease)

    @query()
    def list_observations(
        self,
        ctx: Context,
        *,
        kind: ObservationKind,
        limit: int = 100,
        after: str = "",
        count: bool = True,
    ) -> dict[str, Any]:
        """A page of the lab results or vaccinations the caller may see (the rules of
        cases), newest recorded first, with a cursor and, if ``count``, their total
        (``reads.observations``)."""
        return reads.observations(ctx, kind, limit=limit, after=after, count=count)

    @query()
    def get_observations(
        self, ctx: Context, *, kind: ObservationKind, ids: list[str]
    ) -> list[dict[str, Any] | None]:
        """Lab results or vaccinations by id (``reads.by_id``)."""
        return reads.by_id(ctx, kind, ids)

    @query()
    def grants(self, ctx: Context) -> list[dict[str, Any]]:
        """Access grants to or by the caller's organisation (all, for the commission)."""
        return visibility.grants_seen_by(ctx)

    @query()
    def aggregates(self, ctx: Context) -> list[dict[str, Any]]:
        """Counts of cases (rejected excluded) by disease, region and classification;
        counts below SMALL_COUNT are suppressed where the caller may not see the cases."""
        return visibility.case_aggregates(ctx, Viewer.of(ctx), SMALL_COUNT)

    @query()
    def reference(self, ctx: Context) -> dict[str, Any]:
        """The region table and the regions' recorded populations (public reference data)."""
        return visibility.public_reference(ctx)

    @query(roles=REVIEW_ROLES, kinds=CDC_KINDS)
    def subject_facts(self, ctx: Context, *, pid: str) -> dict[str, Any]:
        """One person's case reports, test results and doses, by pseudonymous id (for the
        health code, through ``ctx.ask``)."""
        return facts_of(ctx, pid)

    @query(roles=REPORTING_ROLES, kinds=HOSPITAL_KINDS)
    def patient(self, ctx: Context, *, case_id: str) -> Any:
        """The reporting hospital's own personal data of a case, from its vault."""
        own_case(ctx, case_id)
        return ctx.get_private(f"{ctx.caller.org}/{PATIENT_COLLECTION}", case_id)


__all__ = ["CDC_ORG", "COMMISSION_ORG", "OVERSEEING_KINDS", "Epidemic"]
