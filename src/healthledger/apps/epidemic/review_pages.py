"""The CDC's and the commission's work in the console (under ``/epidemic``): the
review queue with confirm, reject and request information; the early-warning alerts
of their area; the cross-region access grants they make and receive.

Writes go through ``PageKit.write`` (the API's transactor), as in reporting_pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from healthledger.apps import PageKit, Person, Written
from healthledger.apps.epidemic.names import RegionNames, disease_name, icd10_label
from healthledger.contracts.errors import AccessDenied
from healthledger.node.seam import AppNode

CONTRACT = "epidemic"
OVERSEEING_KINDS = ("cdc", "commission")
GRANT_ROLES = ("admin", "officer", "epidemiologist")
STATUS_WORDS = {
    "reported": "awaiting review",
    "info-requested": "information requested",
    "confirmed": "confirmed",
    "rejected": "rejected",
}
STATUS_TONE = {"reported": "warn", "info-requested": "warn", "confirmed": "good", "rejected": "bad"}
REJECT_REASONS = (
    ("not-a-case", "Not a case"),
    ("duplicate", "A duplicate of another report"),
    ("wrong-disease", "Wrong disease"),
    ("data-error", "An error in the data"),
)
INFO_FIELDS = (
    ("classification", "Classification"),
    ("onset_date", "Date of onset"),
    ("diagnosis_date", "Date of diagnosis"),
    ("region", "Region of residence"),
    ("lab-evidence", "Laboratory evidence"),
)
PURPOSES = (
    ("outbreak-investigation", "Outbreak investigation"),
    ("cross-border-cluster", "A cluster across the border of two areas"),
    ("contact-tracing", "Contact tracing"),
    ("mutual-aid", "Mutual aid"),
    ("audit", "Audit"),
)
ACTIONS = (
    ("investigating", "Investigating: a team is looking into it"),
    ("monitoring", "Monitoring: watching the next days"),
    ("escalated", "Escalated to the commission"),
    ("no-action-needed", "No action needed (explained by known events)"),
)
QUEUE_SHOWN = 50
"""Reports shown at once in each part of the review queue (a page; the next follows)."""
REVIEWED_SHOWN = 20
"""Decisions shown under 'Reviewed lately', the newest first."""
METHOD_WORDS = {
    "C1": "C1 (rise over the last 7 days)",
    "C2": "C2 (rise over days 3 to 9 before)",
    "C3": "C3 (sustained rise)",
}


def case_rows(
    cases: Iterable[Mapping[str, Any]],
    regions: RegionNames,
    org_names: Mapping[str, str] | None = None,
    *,
    newest_first: bool = True,
) -> list[dict[str, Any]]:
    """Cases as people read them, newest report first unless ``newest_first`` is False
    (then in the order given; reporters by name if given)."""
    words = dict(REJECT_REASONS)
    fields = dict(INFO_FIELDS)
    rows = []
    for case in cases:
        review = case.get("review") or {}
        detail = ""
        if review.get("reason"):
            detail = words.get(review["reason"], review["reason"])
        elif review.get("fields"):
            detail = "asked about: " + ", ".join(fields.get(f, f) for f in review["fields"])
        rows.append(
            {
                "case_id": case["case_id"],
                "disease": disease_name(str(case["disease"])),
                "icd10": icd10_label(str(case.get("icd10", ""))),
                "classification": case["classification"],
                "onset": case["onset"],
                "diagnosis": case["diagnosis"],
                "region": regions.label(str(case["region"])),
                "reporter_org": (org_names or {}).get(case["reporter_org"], case["reporter_org"]),
                "reported_at": case["reported_at"],
                "status": case["status"],
                "status_words": STATUS_WORDS.get(case["status"], case["status"]),
                "tone": STATUS_TONE.get(case["status"], "neutral"),
                "review": review,
                "review_detail": detail,
            }
        )
    if not newest_first:
        return rows
    return sorted(rows, key=lambda row: row["reported_at"], reverse=True)


def queue_part(found: Mapping[str, Any], shown: int) -> dict[str, Any]:
    """Where a page of ``case_queue`` (``found``, of at most ``shown`` cases) sits in
    its part of the queue: the total, the first and last place shown (from 1), the
    position of the next page and how many it holds."""
    offset, total = int(found["offset"]), int(found["total"])
    last = offset + len(found["cases"])
    return {
        "total": total,
        "first": offset + 1,
        "last": last,
        "next": str(found["next"]),
        "next_count": min(total - last, shown),
        "later": offset > 0,
    }


def alert_rows(node: AppNode, person: Person, regions: RegionNames) -> list[dict[str, Any]]:
    """The early-warning alerts recorded on chain in ``person``'s area, newest first."""
    org = node.get(f"org/{person.org}")
    area = str(org["region"]) if isinstance(org, dict) else ""
    rows = []
    for _, alert in node.range("alert/"):
        if not isinstance(alert, dict) or not _within(regions, area, str(alert["region"])):
            continue
        rows.append(
            {
                **alert,
                "disease_name": disease_name(str(alert["disease"])),
                "region_label": regions.label(str(alert["region"])),
                "methods_words": [METHOD_WORDS.get(m, m) for m in alert["methods"]],
                "baseline": f"{alert['baseline_milli'] / 1000:.1f}",
                "acknowledged": alert.get("acknowledged"),
                "action_words": dict(ACTIONS).get(
                    str((alert.get("acknowledged") or {}).get("action", "")), ""
                ),
            }
        )
    return sorted(rows, key=lambda row: (row["day"], row["count"]), reverse=True)


def _within(regions: RegionNames, area: str, code: str) -> bool:
    current: str | None = code
    for _ in range(8):
        if current is None:
            return False
        if current == area:
            return True
        current = regions.parents.get(current)
    return False


def require_overseer(person: Person, what: str, roles: tuple[str, ...] | None = None) -> None:
    """Refuse a page to anyone but a CDC or commission (in ``roles``, if given)."""
    if person.kind not in OVERSEEING_KINDS or (roles is not None and person.role not in roles):
        raise AccessDenied(
            f"{what} is for the CDC and the health commission; you are a {person.role} "
            f"of {person.org_name}"
        )


def build_review_pages(node: AppNode, kit: PageKit) -> APIRouter:
    """The CDC's and commission's pages."""
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

    async def queue(
        request: Request, places: Mapping[str, str], written: Written | None = None
    ) -> HTMLResponse:
        """The queue's page; ``places``: where each part starts (``waiting``, ``asked``:
        the ``next`` of a page before, empty for the first)."""
        regions = RegionNames(node)
        names = {o["id"]: str(o.get("name", o["id"])) for o in node.organisations()}

        async def part(name: str, statuses: list[str], order: str, shown: int) -> Any:
            args = {"statuses": statuses, "order": order, "limit": shown}
            found = await kit.ask(
                request, CONTRACT, "case_queue", {**args, "after": places.get(name, "")}
            )
            rows = case_rows(found["cases"], regions, names, newest_first=False)
            return rows, queue_part(found, shown)

        waiting, waiting_part = await part("waiting", ["reported"], "oldest-reported", QUEUE_SHOWN)
        asked, asked_part = await part("asked", ["info-requested"], "newest-reported", QUEUE_SHOWN)
        reviewed, _ = await part(
            "reviewed", ["confirmed", "rejected"], "newest-reviewed", REVIEWED_SHOWN
        )
        return kit.render(
            request,
            "epidemic/review.html",
            status=written.refusal.status if written and written.refusal else 200,
            written=written,
            rows=waiting,
            waiting=waiting_part,
            asked=asked,
            asked_part=asked_part,
            places={name: places.get(name, "") for name in ("waiting", "asked")},
            reviewed=reviewed,
            reasons=REJECT_REASONS,
            info_fields=INFO_FIELDS,
        )

    @router.get("/review")
    async def review_queue(request: Request, waiting: str = "", asked: str = "") -> HTMLResponse:
        """The reports of the CDC's area waiting for review, a page of each part from
        ``waiting`` and ``asked`` (the place the page before gave)."""
        require_overseer(kit.person(request), "The review queue", ("epidemiologist",))
        return await queue(request, {"waiting": waiting, "asked": asked})

    @router.post("/review/{case_id}")
    async def review(request: Request, case_id: str) -> HTMLResponse:
        """Confirm, reject (with a coded reason) or ask the hospital about a case."""
        require_overseer(kit.person(request), "Reviewing a case", ("epidemiologist",))
        form = await request.form()
        kit.check_csrf(request, str(form.get("csrf", "")))
        decision = str(form.get("decision", ""))
        if decision == "reject":
            args: dict[str, Any] = {"case_id": case_id, "reason": str(form.get("reason", ""))}
            function = "reject"
        elif decision == "request-info":
            fields = [str(v) for v in form.getlist("fields")]
            args, function = {"case_id": case_id, "fields": fields}, "request_info"
        else:
            args, function = {"case_id": case_id}, "confirm"
        written = await kit.write(request, CONTRACT, function, args)
        places = {name: str(form.get(name, "")) for name in ("waiting", "asked")}
        return await queue(request, places, written)

    async def alerts_page(request: Request, written: Written | None = None) -> HTMLResponse:
        person = kit.person(request)
        return kit.render(
            request,
            "epidemic/alerts.html",
            status=written.refusal.status if written and written.refusal else 200,
            written=written,
            alerts=alert_rows(node, person, RegionNames(node)),
            actions=ACTIONS,
            may_acknowledge=person.kind == "cdc" and person.role == "epidemiologist",
        )

    @router.get("/alerts")
    async def alerts(request: Request) -> HTMLResponse:
        """Early-warning alerts of the viewer's area, to act on."""
        require_overseer(kit.person(request), "Early-warning alerts")
        return await alerts_page(request)

    @router.post("/alerts/{disease}/{region}/{day}/acknowledge")
    async def acknowledge(request: Request, disease: str, region: str, day: int) -> HTMLResponse:
        """Acknowledge an alert with the action the CDC takes."""
        require_overseer(kit.person(request), "Acknowledging an alert", ("epidemiologist",))
        form = await request.form()
        kit.check_csrf(request, str(form.get("csrf", "")))
        args = {"disease": disease, "region": region, "day": day}
        written = await kit.write(
            request, CONTRACT, "acknowledge_alert", {**args, "action": str(form.get("action", ""))}
        )
        return await alerts_page(request, written)

    async def grants_page(
        request: Request,
        written: Written | None = None,
        values: dict[str, Any] | None = None,
        done: str = "",
    ) -> HTMLResponse:
        person = kit.person(request)
        regions = RegionNames(node)
        org = node.get(f"org/{person.org}")
        area = str(org["region"]) if isinstance(org, dict) else ""
        overseers = [
            key.split("/", 1)[1]
            for key, record in node.range("org/")
            if isinstance(record, dict) and record.get("kind") in OVERSEEING_KINDS
        ]
        names = {o["id"]: str(o.get("name", o["id"])) for o in node.organisations()}
        choices = [
            (org_id, f"{names.get(org_id, org_id)} ({org_id})")
            for org_id in overseers
            if org_id != person.org
        ]
        grants = await kit.ask(request, CONTRACT, "grants", {})
        own_area = [
            (code, label)
            for code, label in regions.choices(levels=("city", "district"))
            if _within(regions, area, code)
        ]
        return kit.render(
            request,
            "epidemic/grants.html",
            status=written.refusal.status if written and written.refusal else 200,
            written=written,
            values=values or {},
            errors=written.refusal.field_errors() if written and written.refusal else {},
            grants=[
                {
                    **g,
                    "regions_words": [regions.get(c).label for c in g["regions"]],
                    "grantee_name": names.get(g["grantee"], g["grantee"]),
                    "grantor_name": names.get(g["grantor_org"], g["grantor_org"]),
                    "purpose_words": dict(PURPOSES).get(g["purpose"], g["purpose"]),
                }
                for g in sorted(grants, key=lambda g: g["at"], reverse=True)
            ],
            grantees=choices,
            area=own_area,
            purposes=PURPOSES,
            done=done,
            may_grant=person.role in GRANT_ROLES,
            person_org=person.org,
        )

    @router.get("/grants")
    async def grants(request: Request) -> HTMLResponse:
        """Grants of a region's detail to and by the organisation, and the grant form."""
        require_overseer(kit.person(request), "Cross-region grants")
        return await grants_page(request)

    @router.post("/grants")
    async def grant(request: Request) -> HTMLResponse:
        """Grant another CDC or the commission the detail of regions of this area."""
        require_overseer(kit.person(request), "Granting access", GRANT_ROLES)
        form = await request.form()
        kit.check_csrf(request, str(form.get("csrf", "")))
        values = {
            "grantee": str(form.get("grantee", "")),
            "regions": [str(v) for v in form.getlist("regions")],
            "until_date": str(form.get("until_date", "")),
            "purpose": str(form.get("purpose", "")),
            "reference": str(form.get("reference", "")).strip(),
        }
        written = await kit.write(request, CONTRACT, "grant_access", dict(values))
        done = "Access granted: the grantee sees these regions' detail until the date given."
        return await grants_page(request, written, {} if written.ok else values, done)

    @router.post("/grants/{grantee}/{grant_id}/revoke")
    async def revoke(request: Request, grantee: str, grant_id: str) -> HTMLResponse:
        """Revoke a grant (its grantor or the commission)."""
        require_overseer(kit.person(request), "Revoking a grant", GRANT_ROLES)
        form = await request.form()
        kit.check_csrf(request, str(form.get("csrf", "")))
        written = await kit.write(
            request, CONTRACT, "revoke_grant", {"grantee": grantee, "grant_id": grant_id}
        )
        return await grants_page(request, written, done="Grant revoked.")

    return router
