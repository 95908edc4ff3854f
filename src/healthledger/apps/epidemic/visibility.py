"""Who sees what (issue 5 item 5), as the contract enforces it: a hospital its own
reports, a CDC or commission the region it serves, and another region's detail only
by a grant recorded on chain (who granted, to whom, which regions, until when, why).

Grant keys::

    grant/<grantee org>/<grant_id>   {grantor_org, by, grantee, regions, from_day,
                                      until_day, purpose, reference, at, revoked?}

A grant is made by a CDC or commission for regions inside its own area, to another
registered CDC or commission, for at most ``MAX_GRANT_DAYS``; it counts from the
day it is recorded to ``until_day`` inclusive (by the caller's proposal clock) unless
revoked by its grantor or the commission.

Grants, regions and populations are read whole (``status_index.scan``), and the
aggregates count every case through the index of cases by status: no read stops at the
10,000 keys one range returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from healthledger.apps.epidemic.checks import (
    COMMISSION_ORG,
    FieldErrors,
    RegionCheck,
    date_field,
    org_record,
    require_kind,
)
from healthledger.apps.epidemic.dates import day_of_ms
from healthledger.apps.epidemic.status_index import COUNTED, entries, scan
from healthledger.contracts.context import Context
from healthledger.contracts.errors import AccessDenied, InvalidArguments, Rejected

MAX_GRANT_DAYS = 366
OVERSEEING_KINDS = ("cdc", "commission")
"""Organisation kinds that see a region's detail, grant it and receive grants."""
MAX_DEPTH = 8


def region_contains(ctx: Context, ancestor: str, code: str) -> bool:
    """True if region ``code`` is ``ancestor`` or lies below it in the region table."""
    current: str | None = code
    for _ in range(MAX_DEPTH):
        if current is None:
            return False
        if current == ancestor:
            return True
        region = ctx.get(f"region/{current}")
        current = region.get("parent") if isinstance(region, dict) else None
    return False


def active_grants(ctx: Context, org: str) -> list[dict[str, Any]]:
    """Grants to ``org`` in force today (by the caller's clock)."""
    today = day_of_ms(ctx.timestamp)
    return [
        grant
        for _, grant in scan(ctx, f"grant/{org}/")
        if "revoked" not in grant and grant["from_day"] <= today <= grant["until_day"]
    ]


@dataclass
class Viewer:
    """The caller's view: kind of organisation, its region and regions granted to it."""

    org: str
    kind: str | None
    region: str | None
    granted: tuple[str, ...] = ()
    _seen: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def of(cls, ctx: Context) -> Viewer:
        """The caller's view, grants included."""
        record = org_record(ctx, ctx.caller.org)
        if record is None:
            return cls(ctx.caller.org, None, None)
        granted: tuple[str, ...] = ()
        if record["kind"] in OVERSEEING_KINDS:
            granted = tuple(
                sorted({code for g in active_grants(ctx, ctx.caller.org) for code in g["regions"]})
            )
        return cls(ctx.caller.org, str(record["kind"]), str(record["region"]), granted)

    @property
    def aggregates_only(self) -> bool:
        """True for organisations outside reporting: they see protected aggregates only."""
        return self.kind is None

    def sees(self, ctx: Context, record: dict[str, Any]) -> bool:
        """True if the viewer may see the detail of ``record`` (a case, lab result or
        vaccination: it has ``reporter_org`` and ``region``)."""
        if self.kind is None:
            return False
        if self.kind == "hospital":
            return bool(record["reporter_org"] == self.org)
        region = str(record["region"])
        if region not in self._seen:
            areas = (self.region, *self.granted) if self.region else self.granted
            self._seen[region] = any(region_contains(ctx, area, region) for area in areas)
        return self._seen[region]


def grant(
    ctx: Context,
    *,
    grantee: str,
    regions: list[str],
    until_date: int | str,
    purpose: str,
    reference: str,
) -> dict[str, Any]:
    """Record a grant of ``regions``' detail to ``grantee`` (see the module docstring;
    ``reference``: a file number, at most 40 letters, digits or hyphens)."""
    if len(reference) > 40 or not all(c.isascii() and (c.isalnum() or c == "-") for c in reference):
        raise InvalidArguments(
            "reference: at most 40 letters, digits or hyphens",
            [{"field": "reference", "message": "at most 40 letters, digits or hyphens"}],
        )
    grantor = require_kind(ctx, *OVERSEEING_KINDS)
    problems = FieldErrors("grant_access")
    today = day_of_ms(ctx.timestamp)
    receiver = org_record(ctx, grantee)
    if grantee == ctx.caller.org:
        problems.add("grantee", "an organisation needs no grant for its own area")
    elif receiver is None or receiver["kind"] not in OVERSEEING_KINDS:
        problems.add("grantee", "not a registered CDC or commission")
    if not 1 <= len(regions) <= 50 or len(set(regions)) != len(regions):
        problems.add("regions", "1 to 50 distinct region codes")
    check = RegionCheck(ctx)
    unknown = [code for code in regions if not check.known(code)]
    if unknown:
        problems.add("regions", f"unknown region codes {unknown}")
    until = date_field(until_date, "until_date", problems)
    if until is not None and not today <= until <= today + MAX_GRANT_DAYS:
        problems.add("until_date", f"must be from today to {MAX_GRANT_DAYS} days ahead")
    problems.raise_if_any()
    assert until is not None
    outside = [code for code in regions if not region_contains(ctx, grantor["region"], code)]
    if outside:
        raise AccessDenied(f"regions {outside} are not in the area of {ctx.caller.org}")
    grant_id = f"g-{ctx.tx_id[:24]}"
    record = {
        "grant_id": grant_id,
        "grantor_org": ctx.caller.org,
        "by": ctx.caller.id,
        "grantee": grantee,
        "regions": sorted(regions),
        "from_day": today,
        "until_day": until,
        "purpose": purpose,
        "reference": reference,
        "at": ctx.timestamp,
    }
    ctx.put(f"grant/{grantee}/{grant_id}", record)
    ctx.emit("access_granted", record)
    return record


def revoke(ctx: Context, *, grantee: str, grant_id: str) -> dict[str, Any]:
    """Revoke a grant: its grantor organisation or the commission."""
    key = f"grant/{grantee}/{grant_id}"
    record = ctx.get(key)
    if not isinstance(record, dict):
        raise Rejected(f"no grant {grant_id} to {grantee}")
    if ctx.caller.org not in (record["grantor_org"], COMMISSION_ORG):
        raise AccessDenied(f"only {record['grantor_org']} or {COMMISSION_ORG} may revoke it")
    if "revoked" in record:
        raise Rejected(f"grant {grant_id} is already revoked")
    revoked = {**record, "revoked": {"by": ctx.caller.id, "at": ctx.timestamp}}
    ctx.put(key, revoked)
    ctx.emit("access_revoked", {"grant_id": grant_id, "grantee": grantee, "by": ctx.caller.id})
    return revoked


def grants_seen_by(ctx: Context) -> list[dict[str, Any]]:
    """Grants to or by the caller's organisation (all of them for the commission);
    AccessDenied for an organisation outside case reporting."""
    org = ctx.caller.org
    if org_record(ctx, org) is None:
        raise AccessDenied(f"{org} takes no part in case reporting")
    return [
        record
        for _, record in scan(ctx, "grant/")
        if org in (record["grantee"], record["grantor_org"], COMMISSION_ORG)
    ]


def case_aggregates(ctx: Context, viewer: Viewer, small_count: int) -> list[dict[str, Any]]:
    """Counts of cases (rejected excluded) by disease, region and classification;
    counts below ``small_count`` suppressed where ``viewer`` may not see the cases.
    Every case counts: they are read through the index of cases by status, whose
    entries carry what is counted and what the viewer rules read."""
    counts: dict[tuple[str, str, str], int] = {}
    visible: dict[tuple[str, str, str], bool] = {}
    for status in COUNTED:
        for _, found in entries(ctx, status):
            key = (found["disease"], found["region"], found["classification"])
            counts[key] = counts.get(key, 0) + 1
            visible[key] = visible.get(key, True) and viewer.sees(ctx, found)
    rows = []
    for (disease_id, region, classification), count in sorted(counts.items()):
        key = (disease_id, region, classification)
        row: dict[str, Any] = {
            "disease": disease_id,
            "region": region,
            "classification": classification,
        }
        if count < small_count and not visible[key]:
            row["suppressed"] = True
        else:
            row["count"] = count
        rows.append(row)
    return rows


def public_reference(ctx: Context) -> dict[str, Any]:
    """What every member may read: the region table (code, name, level, parent) and the
    regions' recorded populations with their source and year (for another application's
    rates, through the declared query ``epidemic.reference``)."""
    shown = ("code", "name", "level", "parent")
    regions = [{k: r.get(k) for k in shown} for _, r in scan(ctx, "region/")]
    populations = {key.split("/", 1)[1]: record for key, record in scan(ctx, "population/")}
    return {"regions": regions, "populations": populations}
