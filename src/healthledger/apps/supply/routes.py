"""API routes of the supply application, mounted at ``/api/v1/supply``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict

from healthledger.apps.supply.digital_link import (
    DigitalLinkError,
    PackLink,
    pack_link,
    qr_png,
    qr_svg,
)
from healthledger.apps.supply.service import CaptureConfig, CaptureService
from healthledger.apps.supply.verification import PublicLedger, verify_pack
from healthledger.contracts.errors import AccessDenied, InvalidArguments
from healthledger.node.embedded import EmbeddedNode


class CaptureBody(BaseModel):
    """A document to capture and the demo identity the server signs as."""

    model_config = ConfigDict(extra="forbid")

    identity: str
    document: dict[str, Any]


def build_router(node: EmbeddedNode, *, config: CaptureConfig | None = None) -> APIRouter:
    """The supply API over ``node``."""
    router = APIRouter()
    service = CaptureService(node, config=config)
    ledger = PublicLedger(node)

    @router.post("/capture", summary="Capture an EPCIS 2.0 document (demo custody)")
    def capture(body: CaptureBody) -> dict[str, Any]:
        """Validate the document against the EPCIS 2.0 schema, then anchor every event in
        one transaction, all or nothing. Demo custody: the server signs as ``identity``
        with the key it holds for it; a real client signs its own proposal."""
        if node.keystore.get(body.identity) is None:
            raise AccessDenied(f"this node holds no key for {body.identity!r} (demo custody)")
        return service.capture(body.identity, body.document)

    @router.get("/units/{unit:path}/history", summary="History of a unit")
    def history(unit: str) -> dict[str, Any]:
        """The unit's record and every event that touched it (through aggregation)."""
        record = ledger.get(f"unit/{unit}")
        if record is None:
            raise InvalidArguments(
                f"no unit {unit}", [{"field": "unit", "message": "never commissioned"}]
            )
        return {"unit": record, "trail": ledger.trail(unit)}

    @router.get("/verify", summary="Verify a pack by its GS1 Digital Link URI (public)")
    def verify(uri: str = Query(..., max_length=512)) -> dict[str, Any]:
        """Status (genuine, unknown, dispensed, recalled, expired, quarantined), provenance
        and the inclusion proof of the unit's latest event. Needs no identity."""
        return verify_pack(node, uri)

    @router.get("/qr.svg", summary="A pack's QR code (SVG)")
    def qr_as_svg(gtin: str, lot: str, serial: str, expiry: str) -> Response:
        """The Digital Link QR code of a pack, as SVG."""
        return Response(qr_svg(_pack(gtin, lot, serial, expiry)), media_type="image/svg+xml")

    @router.get("/qr.png", summary="A pack's QR code (PNG)")
    def qr_as_png(gtin: str, lot: str, serial: str, expiry: str) -> Response:
        """The Digital Link QR code of a pack, as PNG."""
        return Response(qr_png(_pack(gtin, lot, serial, expiry)), media_type="image/png")

    return router


def _pack(gtin: str, lot: str, serial: str, expiry: str) -> PackLink:
    try:
        return pack_link(gtin=gtin, lot=lot, serial=serial, expiry=expiry)
    except DigitalLinkError as exc:
        raise InvalidArguments(str(exc), [{"field": "query", "message": str(exc)}]) from exc


def api_routes(node: EmbeddedNode) -> APIRouter:
    """The router the platform mounts (schema from the default path)."""
    return build_router(node)
