"""API routes of the supply application, mounted at ``/api/v1/supply``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from healthledger.apps.supply.dashboards import storage_of
from healthledger.apps.supply.digital_link import (
    DigitalLinkError,
    PackLink,
    pack_link,
    qr_png,
    qr_svg,
)
from healthledger.apps.supply.event_store import EventQuery, EventStore, check_event, event_time_ms
from healthledger.apps.supply.figures_api import figures_router
from healthledger.apps.supply.photo import MAX_PHOTO_BYTES, UnreadablePhoto, qr_text
from healthledger.apps.supply.queries import (
    container_contents,
    epcis_query_document,
    lot_whereabouts,
)
from healthledger.apps.supply.service import CaptureConfig, CaptureService
from healthledger.apps.supply.verification import PublicLedger, today_of, verify_pack
from healthledger.contracts.errors import AccessDenied, InvalidArguments
from healthledger.contracts.refusal import settle
from healthledger.ledger.transaction import IDENTITY_RE
from healthledger.node.seam import AppNode

# Statuses beyond those every operation documents (the API documents each error's body
# as problem details, 500 and 503 on every operation, 422 on one that takes input).
_REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {"description": "No key is held for the identity, or its role may not do this"},
    409: {
        "description": "Refused by the contract (nothing stored: ``rejected``), or "
        "committed with events refused and recorded as evidence with an alert "
        "(``refused-recorded``: ``tx_id``, ``receipt`` and each event's ``reason`` in "
        "``refused``)"
    },
    504: {"description": "Submitted, but not committed in time"},
}
_DENIED: dict[int | str, dict[str, Any]] = {403: _REFUSALS[403]}
_JSON_LD: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An EPCISQueryDocument",
        "content": {"application/ld+json": {"schema": {"type": "object"}}},
    }
}


def _image(media_type: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": "The QR code",
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
        }
    }


_PHOTO_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["photo"],
                    "properties": {"photo": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


class CaptureBody(BaseModel):
    """A document to capture and the demo identity the server signs as."""

    model_config = ConfigDict(extra="forbid")

    identity: str = Field(pattern=IDENTITY_RE.pattern, description="Demo identity ``org/name``.")
    document: dict[str, Any]


REBUILD_ROLES = ("admin", "inspector")
"""Who may rebuild the read model: an organisation's admin or a regulator's inspector."""


class RebuildBody(BaseModel):
    """Who asks for the read model to be rebuilt (demo custody)."""

    model_config = ConfigDict(extra="forbid")

    identity: str = Field(pattern=IDENTITY_RE.pattern, description="Demo identity ``org/name``.")


def build_router(node: AppNode, *, config: CaptureConfig | None = None) -> APIRouter:
    """The supply API over ``node``."""
    router = APIRouter()
    router.include_router(figures_router(node))
    events = node.shared("events", lambda: EventStore.of(node))
    service = CaptureService(node, config=config, events=events)
    ledger = PublicLedger(node)

    @router.post(
        "/capture", summary="Capture an EPCIS 2.0 document (demo custody)", responses=_REFUSALS
    )
    def capture(body: CaptureBody) -> dict[str, Any]:
        """Validate the document against the EPCIS 2.0 schema, then anchor every event in
        one transaction, all or nothing. Demo custody: the server signs as ``identity``
        with the key it holds for it; a real client signs its own proposal.

        An event that signals counterfeiting or diversion (a pack dispensed twice, an
        unknown serial, a recalled or quarantined pack dispensed) is anchored as
        refused with its reason and an alert: the answer is then 409
        ``refused-recorded``, never 200."""
        if not node.holds(body.identity):
            raise AccessDenied(f"this node holds no key for {body.identity!r} (demo custody)")
        return _settled(service.capture(body.identity, body.document))

    @router.post(
        "/capture/xml",
        summary="Capture an EPCIS 2.0 XML document (demo custody)",
        responses=_REFUSALS,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/xml": {"schema": {"type": "string"}}},
            }
        },
    )
    async def capture_xml(
        request: Request, identity: Annotated[str, Query(pattern=IDENTITY_RE.pattern)]
    ) -> dict[str, Any]:
        """The body is an EPCIS 2.0 XML document (``application/xml`` or ``text/xml``):
        checked by structure, mapped to JSON-LD, validated against the EPCIS 2.0 JSON
        Schema and captured as ``POST /capture`` does, all or nothing (refused events
        answered as 409 ``refused-recorded``); each violation is listed in the problem
        details."""
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in ("application/xml", "text/xml"):
            raise InvalidArguments(
                "send the document as application/xml",
                [{"field": "content-type", "message": f"{media_type or 'none'} is not XML"}],
            )
        if not node.holds(identity):
            raise AccessDenied(f"this node holds no key for {identity!r} (demo custody)")
        data = await request.body()
        return _settled(await run_in_threadpool(service.capture_xml, identity, data))

    @router.post(
        "/events/rebuild",
        summary="Rebuild the event read model from the chain",
        responses=_DENIED,
    )
    def rebuild(body: RebuildBody) -> dict[str, int]:
        """Re-derive the off-chain event store from its documents and the chain's anchors:
        documents no anchor vouches for are dropped and the EPC index is rebuilt. Only an
        administrator or a regulator's inspector whose key this node holds may ask."""
        role = node.role_of(body.identity)
        if role is None:
            raise AccessDenied(f"this node holds no key for {body.identity!r} (demo custody)")
        if role not in REBUILD_ROLES:
            raise AccessDenied(
                f"{body.identity} has role {role!r}; rebuilding the read model "
                f"needs one of {list(REBUILD_ROLES)}"
            )
        return events.rebuild(ledger)

    @router.get("/units/{unit:path}/history", summary="History of a unit")
    def history(unit: str) -> dict[str, Any]:
        """The unit's record, how it stands (``status`` in the vocabulary public
        verification uses, lifecycle ``state``, the ``recall`` reaching it with its time
        and reason), every event that touched it (through aggregation) and its storage
        range (``storage``: a pack's product's; a case's from the packs it holds or held,
        with ``storage_note`` saying whose, or why there is none), as its trace shows."""
        record = ledger.get(f"unit/{unit}")
        if record is None:
            raise InvalidArguments(
                f"no unit {unit}", [{"field": "unit", "message": "never commissioned"}]
            )
        stands = ledger.standing(record, today=today_of(node))
        storage, note = storage_of(ledger, record)
        return {
            "unit": record,
            **stands,
            "trail": ledger.trail(unit),
            "storage": storage,
            "storage_note": note,
        }

    @router.get("/units/{unit:path}/contents", summary="What a case or pallet contains")
    def contents(unit: str) -> dict[str, Any]:
        """The container's current contents, as a tree through every aggregation level."""
        return container_contents(ledger, unit)

    @router.get("/lots/{gtin}/{lot}", summary="Where a lot is now")
    def lot(gtin: str, lot: str) -> dict[str, Any]:
        """Every unit of the lot with its custodian, location and status, and counts."""
        return lot_whereabouts(ledger, gtin, lot)

    @router.get(
        "/events",
        summary="EPCIS 2.0 event query (subset), as EPCISQueryDocument",
        response_class=Response,
        responses=_JSON_LD,
    )
    def query_events(
        match_epc: Annotated[str | None, Query(alias="MATCH_epc", max_length=512)] = None,
        eq_biz_step: Annotated[str | None, Query(alias="EQ_bizStep", max_length=256)] = None,
        ge_event_time: Annotated[str | None, Query(alias="GE_eventTime")] = None,
        lt_event_time: Annotated[str | None, Query(alias="LT_eventTime")] = None,
        per_page: Annotated[int, Query(alias="perPage", ge=1, le=10_000)] = 100,
    ) -> Response:
        """Events by EPC (URN or Digital Link; the unit itself, a child or a parent),
        bizStep and eventTime range, in capture order, as EPCIS 2.0 JSON-LD."""
        query = EventQuery(
            epc=match_epc,
            biz_step=eq_biz_step,
            ge_event_time_ms=_time("GE_eventTime", ge_event_time),
            lt_event_time_ms=_time("LT_eventTime", lt_event_time),
            limit=per_page,
        )
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=node.clock())
        document = epcis_query_document(
            events, query, creation_date=moment.isoformat(timespec="milliseconds")
        )
        return Response(json.dumps(document), media_type="application/ld+json")

    @router.get("/events/check", summary="Check a stored event against its on-chain anchor")
    def check(event_hash: Annotated[str, Query(max_length=128)]) -> dict[str, Any]:
        """Recompute the stored event's CBV 2.0 hash; compare it with the anchor on chain
        and give the anchoring transaction's inclusion proof (``verdict``: intact,
        tampered or unanchored)."""
        return check_event(node, events, event_hash)

    @router.get("/verify", summary="Verify a pack by its GS1 Digital Link URI (public)")
    def verify(uri: str = Query(..., max_length=512)) -> dict[str, Any]:
        """Status (genuine, unknown, recalled, dispensed, destroyed, expired, quarantined)
        with its ``reason`` and ``advice`` in words, the ``recall`` reaching the pack (time
        and reason), provenance, temperature ``excursions`` outside the product's range
        and the inclusion proof of the unit's latest event. Needs no identity."""
        return verify_pack(node, uri)

    @router.post(
        "/verify/photo",
        summary="Verify a pack from a photo of its QR code (public)",
        openapi_extra=_PHOTO_BODY,
    )
    async def verify_photo(request: Request) -> dict[str, Any]:
        """Multipart field ``photo``: the QR is decoded here, then answered as ``GET
        /verify``. An unreadable photo is a 422 problem saying why."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_PHOTO_BYTES + 64 * 1024:
            raise UnreadablePhoto(f"the photo is larger than {MAX_PHOTO_BYTES // 2**20} MB")
        async with request.form(max_files=1, max_fields=2) as form:
            photo = form.get("photo")
            if not isinstance(photo, UploadFile):
                raise UnreadablePhoto("send the photo as the multipart field 'photo'")
            data = await photo.read(MAX_PHOTO_BYTES + 1)
        return verify_pack(node, qr_text(data))

    @router.get(
        "/qr.svg",
        summary="A pack's QR code (SVG)",
        response_class=Response,
        responses=_image("image/svg+xml"),
    )
    def qr_as_svg(gtin: str, lot: str, serial: str, expiry: str) -> Response:
        """The Digital Link QR code of a pack, as SVG."""
        return Response(qr_svg(_pack(gtin, lot, serial, expiry)), media_type="image/svg+xml")

    @router.get(
        "/qr.png",
        summary="A pack's QR code (PNG)",
        response_class=Response,
        responses=_image("image/png"),
    )
    def qr_as_png(gtin: str, lot: str, serial: str, expiry: str) -> Response:
        """The Digital Link QR code of a pack, as PNG."""
        return Response(qr_png(_pack(gtin, lot, serial, expiry)), media_type="image/png")

    return router


def _settled(captured: dict[str, Any]) -> dict[str, Any]:
    """The capture's answer, or ``RefusedInPart`` (409 ``refused-recorded``) if the
    contract refused an event and recorded it as evidence."""
    settle(captured["tx_id"], captured["receipt"], captured["result"])
    return captured


def _time(name: str, raw: str | None) -> int | None:
    if raw is None:
        return None
    found = event_time_ms(raw)
    if found is None:
        raise InvalidArguments(
            f"{name} is not a date-time with a zone", [{"field": name, "message": "bad time"}]
        )
    return found


def _pack(gtin: str, lot: str, serial: str, expiry: str) -> PackLink:
    try:
        return pack_link(gtin=gtin, lot=lot, serial=serial, expiry=expiry)
    except DigitalLinkError as exc:
        raise InvalidArguments(str(exc), [{"field": "query", "message": str(exc)}]) from exc
