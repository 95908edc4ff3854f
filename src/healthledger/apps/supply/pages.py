"""Console pages of the supply application (mounted at ``/supply``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import UploadFile

from healthledger.apps import PageKit
from healthledger.apps.supply.dashboards import unit_trace
from healthledger.apps.supply.digital_link import DigitalLinkError, pack_link
from healthledger.apps.supply.event_store import EventStore
from healthledger.apps.supply.forms import build_forms
from healthledger.apps.supply.photo import MAX_PHOTO_BYTES, UnreadablePhoto, qr_text
from healthledger.apps.supply.queries import lot_whereabouts
from healthledger.apps.supply.service import CaptureService
from healthledger.apps.supply.standing import ALERTS
from healthledger.apps.supply.verification import PublicLedger, in_words, today_of, verify_pack
from healthledger.apps.supply.worklists import at_this_height
from healthledger.contracts.errors import InvalidArguments
from healthledger.node.seam import AppNode

TEMPLATES = Path(__file__).resolve().parent / "templates"
PUBLIC_PAGES = ("/supply/verify",)
_FORM_OVERHEAD = 64 * 1024
"""Room for the multipart envelope and the other fields around the photo."""


def build_pages(node: AppNode, kit: PageKit) -> APIRouter:
    """The supply pages: unit and lot trace, recalls, alerts and the roles' forms (logged
    in) and the public pack verification page (by URI, photo or camera scan). Pages are
    for people: none is in the OpenAPI document (the same answers are JSON under
    ``/api/v1/supply``)."""
    router = APIRouter(include_in_schema=False)
    ledger = PublicLedger(node)
    events = node.shared("events", lambda: EventStore.of(node))

    @router.get("", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        """Where to go in the supply application."""
        kit.require_identity(request)
        return kit.render(request, "supply/index.html")

    @router.get("/trace", response_class=HTMLResponse)
    def trace(request: Request, unit: str = "", gtin: str = "", lot: str = "") -> HTMLResponse:
        """A unit's timeline and temperature chart, or where a lot's units are now."""
        kit.require_identity(request)
        unit, gtin, lot = unit.strip()[:128], gtin.strip()[:14], lot.strip()[:20]
        found = unit_trace(ledger, unit) if unit else None
        whereabouts = lot_whereabouts(ledger, gtin, lot) if gtin and lot and not unit else None
        if whereabouts is not None:
            product = ledger.get(f"product/{gtin}") or {}
            whereabouts["product"] = product.get("name")
            for place in whereabouts["places"]:
                place["custodian_name"] = ledger.org_name(place["custodian"])
                place["place_name"] = ledger.place_name(place["location"])
        problem = None
        if unit and found is None:
            case = re.fullmatch(r"00/\d{18}", unit) is not None
            asked = f"case {ledger.sscc(unit)}" if case else f"unit “{unit}”"
            problem = f"No {asked} is known to this ledger."
            if not unit.startswith(("01/", "00/")):
                problem += " A pack is written 01/<GTIN>/21/<serial>, a case 00/<SSCC>."
        elif whereabouts is not None and not whereabouts["units"]:
            problem = f"No unit of GTIN {gtin} lot {lot} is known to this ledger."
        elif not unit and bool(gtin) != bool(lot):
            problem = "To trace a lot, give both its GTIN and its lot number."
        return kit.render(
            request,
            "supply/trace.html",
            status=404 if problem else 200,
            query={"unit": unit, "gtin": gtin, "lot": lot},
            trace=found,
            lot=whereabouts,
            problem=problem,
        )

    @router.get("/alerts", response_class=HTMLResponse)
    def alerts(request: Request) -> HTMLResponse:
        """The counterfeit, diversion and cold-chain alerts the viewer may see, newest first."""
        identity = kit.require_identity(request)
        found = node.query(identity, "supply", "alerts", {})
        shown = [
            {
                **a,
                "org_name": ledger.org_name(a.get("org")),
                "maker_name": ledger.org_name(a.get("maker")),
                "what": ALERTS.get(str(a.get("kind")), str(a.get("kind")).replace("_", " ")),
                "sscc": ledger.sscc(a["unit"]) if str(a.get("unit")).startswith("00/") else None,
            }
            | {"detail": in_words(str(a.get("detail", "")), ledger)}
            for a in reversed(found)
        ]
        return kit.render(request, "supply/alerts.html", alerts=shown)

    def answer_page(request: Request, uri: str, problem: str | None) -> HTMLResponse:
        answer: dict[str, Any] | None = None
        if uri and problem is None:
            try:
                answer = verify_pack(node, uri[:512])
            except InvalidArguments as exc:
                problem = str(exc)
        return kit.render(
            request,
            "supply/verify.html",
            status=422 if problem else 200,
            uri=uri[:512],
            answer=answer,
            problem=problem,
            max_photo_mb=MAX_PHOTO_BYTES // (1024 * 1024),
            samples=sample_packs(ledger),
        )

    @router.get("/verify", response_class=HTMLResponse)
    def verify_page(request: Request, uri: str = "") -> HTMLResponse:
        """Public: verify a pack by its Digital Link URI; a bad URI is a clear answer."""
        return answer_page(request, uri, None)

    @router.post("/verify", response_class=HTMLResponse)
    async def verify_photo(request: Request) -> HTMLResponse:
        """Public: verify a pack from an uploaded photo of its QR code (decoded here)."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_PHOTO_BYTES + _FORM_OVERHEAD:
            return answer_page(request, "", _too_large())
        async with request.form(max_files=1, max_fields=4) as form:
            kit.check_csrf(request, str(form.get("csrf", "")))
            photo = form.get("photo")
            if not isinstance(photo, UploadFile):
                return answer_page(request, "", "choose a photo of the pack's QR code")
            data = await photo.read(MAX_PHOTO_BYTES + 1)
        if len(data) > MAX_PHOTO_BYTES:
            return answer_page(request, "", _too_large())
        try:
            uri = qr_text(data)
        except UnreadablePhoto as exc:
            return answer_page(request, "", str(exc))
        return answer_page(request, uri, None)

    router.include_router(build_forms(node, kit, CaptureService(node, events=events)))
    return router


def sample_packs(ledger: PublicLedger) -> list[dict[str, str]]:
    """Real packs of this ledger to try on the public verify page (found once per block)."""
    return at_this_height(ledger, "samples", today_of(ledger.node), lambda: _samples(ledger))


def _samples(ledger: PublicLedger, *, scan: int = 5000) -> list[dict[str, str]]:
    """Real packs of this ledger to try on the public verify page: one genuine, one
    dispensed, one recalled, one quarantined (those found among the first ``scan``
    packs)."""
    wanted = {
        "genuine": "A genuine pack",
        "dispensed": "A dispensed pack",
        "recalled": "A recalled pack",
        "quarantined": "A quarantined pack",
    }
    found: dict[str, dict[str, str]] = {}
    today = today_of(ledger.node)
    for _, record in ledger.range("unit/01/", scan):
        if not record.get("lot") or not record.get("expiry"):
            continue
        status = ledger.standing(record, today=today)["status"]
        if status in wanted and status not in found:
            expiry = str(record["expiry"]).replace("-", "")[2:]
            try:
                link = pack_link(
                    gtin=record["gtin"], lot=record["lot"], serial=record["serial"], expiry=expiry
                )
            except DigitalLinkError:
                continue
            found[status] = {"uri": link.uri(), "label": wanted[status], "status": status}
        if len(found) == len(wanted):
            break
    return [found[s] for s in wanted if s in found]


def _too_large() -> str:
    return f"the photo is larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB"
