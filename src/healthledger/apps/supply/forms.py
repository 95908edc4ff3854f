"""The supply roles' forms: commission, pack, ship, receive, dispense by a scanned QR,
quality release or destruction, recall.

Every form writes through the services the API uses: an operation is an EPCIS
document checked by :meth:`CaptureService.prepare` (as ``POST /capture`` checks one)
and signed as the logged-in identity through the console's ``kit.write`` (the
service behind ``POST /api/v1/demo/invoke``); a quality decision and a recall are
contract calls through ``kit.write``. Each page then shows the receipt, or the
refusal in the contract's words with names for codes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from healthledger.appkit.readable import says_org, someone
from healthledger.apps import PageKit, Person, Refusal, Written
from healthledger.apps.supply import operations
from healthledger.apps.supply.aggregation import anchor_key
from healthledger.apps.supply.capture_step import MAKER_ROLES, REGULATOR_ROLES
from healthledger.apps.supply.dashboards import RECALL_BUCKETS, recall_dashboard
from healthledger.apps.supply.photo import MAX_PHOTO_BYTES, UnreadablePhoto, qr_text
from healthledger.apps.supply.service import CaptureService
from healthledger.apps.supply.standing import STATES
from healthledger.apps.supply.verification import PublicLedger, in_words, parse_link
from healthledger.apps.supply.worklists import Worklist, case_label, worklist
from healthledger.contracts.errors import InvalidArguments
from healthledger.node.seam import AppNode


def _refused(exc: InvalidArguments) -> Written:
    return Written(refusal=Refusal(422, "the form is not complete", str(exc), exc.errors))


class SupplyForms:
    """The form handlers over one node: build, capture or call, then explain."""

    def __init__(self, node: AppNode, kit: PageKit, service: CaptureService) -> None:
        self.node = node
        self.kit = kit
        self.service = service
        self.ledger = PublicLedger(node)

    def work(self, person: Person) -> Worklist:
        """The person's organisation's worklist."""
        return worklist(self.ledger, person.org)

    def prefixes(self, org: str) -> list[str]:
        """The organisation's GS1 company prefixes."""
        return list((self.node.organisation(org) or {}).get("gs1_prefixes", []))

    def explained(self, written: Written, steps: list[dict[str, Any]] | None = None) -> Written:
        """``written`` with its refusal's reason in words: for a capture committed with
        events refused as evidence, each event's reason as its anchor records it."""
        if written.refusal is None:
            return written
        detail = written.refusal.detail
        if written.receipt is not None and steps:
            anchors = [self.ledger.get(anchor_key(step["event_hash"])) or {} for step in steps]
            reasons = [str(a["reason"]) for a in anchors if a.get("accepted") is False]
            if reasons:
                detail = (
                    "; ".join(reasons) + ". The attempt is recorded as evidence and the maker "
                    "and the regulator are alerted."
                )
        detail = in_words(detail, self.ledger)
        return dataclasses.replace(
            written, refusal=dataclasses.replace(written.refusal, detail=detail)
        )

    async def capture(self, request: Request, build: Callable[[], dict[str, Any]]) -> Written:
        """Build an EPCIS document, check it as the API does, sign and capture it as the
        logged-in identity, and keep its events in the read model."""
        try:
            document = await run_in_threadpool(build)
            steps = await run_in_threadpool(self.service.prepare, document)
        except InvalidArguments as exc:
            return _refused(exc)
        written = await self.kit.write(request, "supply", "capture", {"steps": steps})
        if written.receipt is not None:
            tx_id = str(written.receipt["tx_id"])
            await run_in_threadpool(self.service.keep, tx_id, document, steps)
        return await run_in_threadpool(self.explained, written, steps)

    async def call(self, request: Request, function: str, args: dict[str, Any]) -> Written:
        """A contract call signed as the logged-in identity."""
        written = await self.kit.write(request, "supply", function, args)
        return await run_in_threadpool(self.explained, written)


async def _fields(request: Request, kit: PageKit) -> dict[str, str]:
    async with request.form(max_files=0, max_fields=16) as form:
        kit.check_csrf(request, str(form.get("csrf", "")))
        return {k: str(v).strip()[:512] for k, v in form.items() if isinstance(v, str)}


def _int(raw: str, field: str) -> int:
    if not raw.isascii() or not raw.isdigit():
        message = "a whole number"
        raise InvalidArguments(f"{field} must be {message}", [{"field": field, "message": message}])
    return int(raw)


def build_forms(node: AppNode, kit: PageKit, service: CaptureService) -> APIRouter:
    """The supply forms (mounted with the supply pages under ``/supply``)."""
    router = APIRouter(include_in_schema=False)
    forms = SupplyForms(node, kit, service)

    def page(
        request: Request, template: str, written: Written | None = None, **context: Any
    ) -> HTMLResponse:
        person = kit.person(request)
        status = 200 if written is None or written.refusal is None else written.refusal.status
        work = forms.work(person)
        return kit.render(
            request,
            template,
            status=status,
            person=person,
            work=work,
            options=_options(work),
            written=written,
            may_decide=person.role in MAKER_ROLES,
            may_recall=person.role in (*MAKER_ROLES, *REGULATOR_ROLES),
            **context,
        )

    async def shown(request: Request, template: str, written: Written, **context: Any) -> Any:
        return await run_in_threadpool(page, request, template, written, **context)

    # --- the maker ------------------------------------------------------------------

    @router.get("/commission", response_class=HTMLResponse)
    def commission_form(request: Request) -> HTMLResponse:
        """Commission a lot of packs (the maker)."""
        return page(request, "supply/commission.html", form={}, done=False)

    @router.post("/commission", response_class=HTMLResponse)
    async def commission(request: Request) -> Any:
        """Commission ``count`` packs of a product in a lot, at one of the maker's places."""
        form = await _fields(request, kit)

        def build() -> dict[str, Any]:
            count = _int(form.get("count", ""), "count")
            return operations.commissioning(
                gtin=form.get("product", ""),
                lot=form.get("lot", ""),
                expiry=form.get("expiry", ""),
                count=count,
                gln=form.get("place", ""),
                at_ms=node.clock(),
            )

        written = await forms.capture(request, build)
        return await shown(request, "supply/commission.html", written, form=form, done=written.ok)

    @router.get("/pack", response_class=HTMLResponse)
    def pack_form(request: Request) -> HTMLResponse:
        """Pack loose packs of a lot into a new case."""
        return page(request, "supply/pack.html", form={})

    @router.post("/pack", response_class=HTMLResponse)
    async def pack(request: Request) -> Any:
        """Pack the loose packs of the chosen lot (up to ``count``) into a new case."""
        form = await _fields(request, kit)
        person = kit.person(request)
        made: dict[str, str] = {}

        def build() -> dict[str, Any]:
            work = forms.work(person)
            chosen = next(
                (x for x in work.loose if f"{x['gtin']}/{x['lot']}" == form.get("lot")), None
            )
            if chosen is None:
                message = "choose a lot of which you hold loose packs"
                raise InvalidArguments(message, [{"field": "lot", "message": message}])
            count = _int(form.get("count", "") or str(len(chosen["units"])), "count")
            units = chosen["units"][: max(count, 1)]
            record = node.get(f"unit/{units[0]}") or {}
            at = node.clock()
            sscc = operations.case_sscc(forms.prefixes(person.org), 0, at)
            made["case"] = f"00/{sscc}"
            made["sscc"] = forms.ledger.sscc(sscc)
            return operations.packing(
                units=units, sscc=sscc, gln=str(record.get("location")), at_ms=at
            )

        written = await forms.capture(request, build)
        return await shown(request, "supply/pack.html", written, form=form, made=made)

    @router.get("/ship", response_class=HTMLResponse)
    def ship_form(request: Request) -> HTMLResponse:
        """Ship a case or a pack to another member's place."""
        return page(
            request, "supply/ship.html", form={"unit": request.query_params.get("unit", "")}
        )

    @router.post("/ship", response_class=HTMLResponse)
    async def ship(request: Request) -> Any:
        """Ship the chosen case or pack from where it is to the chosen destination."""
        form = await _fields(request, kit)

        def build() -> dict[str, Any]:
            unit = form.get("unit", "")
            record = node.get(f"unit/{unit}") or {}
            return operations.shipping(
                unit=unit,
                gln=str(record.get("location") or ""),
                destination=form.get("destination", ""),
                at_ms=node.clock(),
            )

        written = await forms.capture(request, build)
        return await shown(request, "supply/ship.html", written, form=form)

    # --- distributor, pharmacy, hospital ----------------------------------------------

    @router.get("/receive", response_class=HTMLResponse)
    def receive_form(request: Request) -> HTMLResponse:
        """Shipments on their way to the organisation's places."""
        return page(request, "supply/receive.html")

    @router.post("/receive", response_class=HTMLResponse)
    async def receive(request: Request) -> Any:
        """Receive one shipment at its destination; a case is unpacked on arrival."""
        form = await _fields(request, kit)

        def build() -> dict[str, Any]:
            unit = form.get("unit", "")
            record = node.get(f"unit/{unit}") or {}
            return operations.receiving(
                unit=unit,
                gln=str(record.get("destination") or ""),
                at_ms=node.clock(),
                unpack=bool(record.get("children")),
            )

        written = await forms.capture(request, build)
        return await shown(request, "supply/receive.html", written, form=form)

    @router.get("/dispense", response_class=HTMLResponse)
    def dispense_form(request: Request) -> HTMLResponse:
        """Dispense a pack by scanning its QR code (camera or photo) or typing its link."""
        return page(request, "supply/dispense.html", max_photo_mb=MAX_PHOTO_BYTES // 2**20, form={})

    @router.post("/dispense", response_class=HTMLResponse)
    async def dispense(request: Request) -> Any:
        """Dispense the pack whose QR code was scanned in the browser, photographed and
        decoded here, or typed."""
        person = kit.person(request)
        async with request.form(max_files=1, max_fields=4) as form:
            kit.check_csrf(request, str(form.get("csrf", "")))
            uri, problem = await _scanned(form)
        found: dict[str, str] = {"uri": uri}

        def build() -> dict[str, Any]:
            if problem is not None:
                raise UnreadablePhoto(problem)
            link = parse_link(uri)
            record = node.get(f"unit/{link.unit}") or {}
            places = [p["gln"] for p in forms.work(person).places]
            held = record.get("custodian") == person.org and record.get("location") in places
            gln = str(record["location"]) if held else (places[0] if places else "")
            found["unit"] = link.unit
            return operations.dispensing(unit=link.unit, gln=gln, at_ms=node.clock())

        written = await forms.capture(request, build)
        return await shown(
            request,
            "supply/dispense.html",
            written,
            form=found,
            max_photo_mb=MAX_PHOTO_BYTES // 2**20,
        )

    # --- quality and recalls -------------------------------------------------------------

    @router.get("/holds", response_class=HTMLResponse)
    def holds_form(request: Request) -> HTMLResponse:
        """Quarantined packs of the maker's products, each waiting for a decision."""
        return page(request, "supply/holds.html", form={})

    @router.post("/holds", response_class=HTMLResponse)
    async def decide(request: Request) -> Any:
        """Release a quarantined pack or destroy it, with the reason."""
        form = await _fields(request, kit)
        args = {
            "unit": form.get("unit", ""),
            "decision": form.get("decision", ""),
            "reason": form.get("reason", ""),
        }
        written = await forms.call(request, "decide_quarantine", args)
        return await shown(request, "supply/holds.html", written, form=form)

    @router.get("/recalls", response_class=HTMLResponse)
    def recalls(request: Request) -> HTMLResponse:
        """Every recall: its date and reason, units located, returned, destroyed and
        still missing; the maker's quality staff and a regulator may recall a lot here."""
        return page(request, "supply/recalls.html", form={}, **_recalls(forms, kit.person(request)))

    @router.post("/recalls", response_class=HTMLResponse)
    async def recall(request: Request) -> Any:
        """Recall a lot: its maker's quality staff or a regulator's inspector."""
        form = await _fields(request, kit)
        args = {
            "gtin": form.get("product", ""),
            "lot": form.get("lot", ""),
            "reason": form.get("reason", ""),
        }
        written = await forms.call(request, "recall", args)
        listed = await run_in_threadpool(_recalls, forms, kit.person(request))
        return await shown(request, "supply/recalls.html", written, form=form, **listed)

    return router


def _options(work: Worklist) -> dict[str, list[tuple[str, str]]]:
    """The choices of the forms' selects: names first, codes second."""

    def unit(u: dict[str, Any]) -> str:
        if u["kind"] == "case":
            return f"{case_label(u)}, at {u['place_name'] or 'GLN ' + str(u['location'])}"
        return f"{u['product']}, lot {u['lot']}, pack {u['serial']}"

    def place(d: dict[str, Any]) -> str:
        # a place often bears its organisation's name (a pharmacy's one shop, a
        # hospital's clinic): say it once, as every "held by" does
        who = "" if says_org(d["name"], d["org_name"]) else f" ({d['org_name']})"
        return f"{d['name']}{who} · GLN {d['gln']}"

    return {
        "products": [(p["gtin"], f"{p['name']} · GTIN {p['gtin']}") for p in work.products],
        "places": [(p["gln"], f"{p['name']} · GLN {p['gln']}") for p in work.places],
        "destinations": [(d["gln"], place(d)) for d in work.destinations],
        "loose": [
            (
                f"{x['gtin']}/{x['lot']}",
                f"{x['product']}, lot {x['lot']}: {len(x['units'])} loose packs",
            )
            for x in work.loose
        ],
        "shippable": [(u["unit"], unit(u)) for u in work.shippable],
    }


def _recalls(forms: SupplyForms, person: Person) -> dict[str, Any]:
    """The recall dashboard and the products ``person`` may recall (a maker its own, a
    regulator every one)."""
    products = [v for _, v in forms.ledger.range("product/", 1000)]
    if person.role not in REGULATOR_ROLES:
        products = [p for p in products if p["maker"] == person.org]
    return {
        "recalls": [_recall_in_words(forms, r) for r in recall_dashboard(forms.ledger)],
        "buckets": RECALL_BUCKETS,
        "product_options": [(p["gtin"], f"{p['name']} · GTIN {p['gtin']}") for p in products],
    }


def _recall_in_words(forms: SupplyForms, recall: dict[str, Any]) -> dict[str, Any]:
    """A recall of the dashboard with names for its codes, for the page (the API answers
    the codes): who recalled by organisation and role (``readable.someone``), and each
    unit's holder and place by name, its state in words."""
    orgs: dict[str, str] = {}
    places: dict[str, str | None] = {}

    def org_name(org: str | None) -> str:
        if org and org not in orgs:
            orgs[org] = forms.ledger.org_name(org)
        return orgs.get(org or "", "")

    def place_name(gln: str | None) -> str | None:
        if gln and gln not in places:
            places[gln] = forms.ledger.place_name(gln)
        return places.get(gln or "")

    by = str(recall["by"])
    role = forms.node.role_of(by) if "/" in by else None
    units = [
        u
        | {
            "custodian_name": org_name(u.get("custodian")),
            "place_name": place_name(u.get("location")),
            "state": STATES.get(str(u.get("status")), str(u.get("status") or "")),
        }
        for u in recall["units"]
    ]
    return recall | {
        "by_someone": someone(by, role=role, org_name=recall["by_name"]),
        "units": units,
    }


async def _scanned(form: FormData) -> tuple[str, str | None]:
    """The pack's link from the form: typed or filled in by the camera scan, else read
    from the uploaded photo; with the reason when there is none."""
    uri = str(form.get("uri") or "").strip()[:512]
    if uri:
        return uri, None
    photo = form.get("photo")
    if not isinstance(photo, UploadFile) or not photo.filename:
        return "", "scan the pack's QR code, upload a photo of it, or type its link"
    data = await photo.read(MAX_PHOTO_BYTES + 1)
    try:
        return await run_in_threadpool(qr_text, data), None
    except UnreadablePhoto as exc:
        return "", str(exc)
