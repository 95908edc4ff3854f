"""The health code's API, mounted at ``/api/v1/credentials/healthcode``: every figure the
public page and the holder's page show, from the same service.

Public (no identity): the rules and their versions, the count of colour changes by rule
clause, district and day with the appeals, the keys codes verify with, and the
verification of a scanned code. A holder's colour and a fresh QR are served by person id
(the demo's holder page; a real holder would prove a wallet key). Writes (``evaluate``,
``file_appeal``, ``decide_appeal``, ``propose_rules``, ``approve_rules``) are contract
calls like any other, through ``POST /api/v1/demo/invoke`` or a signed transaction.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field

from healthledger.apps.credentials import healthcode_service as service
from healthledger.apps.credentials.healthcode_qr import verify_code
from healthledger.node.seam import AppNode, NodeError

PID = r"^p[0-9]+-[0-9a-f]{16,64}$"
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No health code is recorded for this person"}
}
_QR: dict[int | str, dict[str, Any]] = {
    **_NOT_FOUND,
    503: {"description": "This node does not hold the CDC's key that signs health codes"},
}


class CodeText(BaseModel):
    """A scanned health-code QR text."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4096)


def _pid(pid: str) -> str:
    if not re.match(PID, pid):
        raise HTTPException(404, "no health code is recorded for this person")
    return pid


def healthcode_router(node: AppNode) -> APIRouter:
    """The health code's routes (prefix ``/healthcode``)."""
    router = APIRouter(prefix="/healthcode", tags=["health code"])

    @router.get("/rules", summary="Health-code rules: every version and the one in force")
    def rules() -> dict[str, Any]:
        """Each rule set as published (JSON clauses), its digest, who proposed and which
        organisations approved it; ``current`` names the version in force."""
        return service.rules(node)

    @router.get("/changes", summary="Colour changes by rule clause, district and day")
    def changes() -> dict[str, Any]:
        """Every recorded colour change counted by day (the calendar day in the zone
        ``days_in`` names, of the block that recorded it), district, rule version and
        clause (changes made by an appeal counted apart), totals per day by colour, and
        every appeal with its outcome. A change that cites no clause cannot be recorded."""
        return service.board(node).summary()

    @router.get("/jwks.json", summary="Keys that health-code QR codes verify with")
    def jwks() -> dict[str, Any]:
        """The CDC's published public keys (JWKS), as recorded on chain: save it to
        verify codes offline (``healthledger credentials verify-code --keys``)."""
        return service.jwks(node)

    @router.post("/verify", summary="Verify a scanned health code against the ledger's keys")
    def verify(body: CodeText) -> dict[str, Any]:
        """The verdict on a code's text (VALID, EXPIRED, NOT_YET_VALID, UNKNOWN_KEY,
        BAD_SIGNATURE or MALFORMED) with its colour and rule; a refusal is a verdict, not
        an error."""
        verdict = verify_code(body.text, service.jwks(node), now_s=node.clock() // 1000)
        return verdict.to_json()

    @router.get("/holders", summary="People with a recorded health code (demo)")
    def holders() -> list[dict[str, Any]]:
        """The demo's simulated holders by pseudonymous id, red first: whom the holder's
        page lets you be."""
        return service.holders(node)

    @router.get("/holders/{pid}", summary="A holder's colour and why", responses=_NOT_FOUND)
    def holder(pid: str = Path(max_length=80)) -> dict[str, Any]:
        """The colour, the rule version and clause behind it, the facts it rests on with
        their dates and commitments, earlier colours and appeals."""
        found = service.holder_view(node, _pid(pid))
        if found is None:
            raise HTTPException(404, "no health code is recorded for this person")
        return found

    @router.get("/holders/{pid}/qr", summary="A freshly signed health-code QR", responses=_QR)
    def qr(pid: str = Path(max_length=80)) -> dict[str, Any]:
        """The code as a compact JWS valid for 60 seconds, and its QR code as SVG."""
        try:
            found = service.fresh_qr(node, _pid(pid))
        except NodeError as exc:
            raise HTTPException(503, str(exc)) from None
        if found is None:
            raise HTTPException(404, "no health code is recorded for this person")
        return found

    return router
