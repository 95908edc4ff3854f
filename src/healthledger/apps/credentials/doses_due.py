"""A holder's own doses due (issue 15 item 8): the wallet presents one of the holder's
vaccination credentials (an SD-JWT VC bound to the wallet's key, with a Key Binding JWT
for ``AUDIENCE`` signed in the last five minutes, disclosing nothing it need not) and gets
back where the holder stands in each vaccine's schedule: doses that count, doses given
too early, and the next dose with its due and overdue dates.

Only the holder can ask: the presentation must verify against the ledger's trust list
and status lists and prove possession of the key the credential is bound to. The node
finds the credential's record by the hash of its identifier (``jti``), the recorded
dose it was issued from and the person's other doses (through the epidemic
application's declared queries ``get_observations`` and ``subject_facts``, as a CDC
epidemiologist whose key the node holds, as for the health code), each read by its key
however many doses the ledger holds. The answer names no pseudonymous id, no region
and no issuer: only the holder's schedule.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from healthledger.apps import PageKit
from healthledger.apps.credentials.coverage import iso
from healthledger.apps.credentials.routes import ledger_sources
from healthledger.apps.credentials.schedules import (
    SCHEDULES_VERSION,
    STATUS_TITLES,
    Dose,
    SeriesPlan,
    plan,
)
from healthledger.apps.credentials.service import CredentialService
from healthledger.crypto.credentials.policy import Policy
from healthledger.crypto.credentials.verifier import verify_credential
from healthledger.errors import HealthledgerError
from healthledger.node.seam import AppNode

AUDIENCE = "healthledger:credentials:doses-due"
"""The ``aud`` a wallet's Key Binding JWT names to ask for its holder's doses due."""
KEY_BINDING_MAX_AGE_S = 300
SCRIPT = Path(__file__).resolve().parent / "static" / "doses_due.js"
PUBLIC_PAGES = ("/credentials/doses_due.js",)
DAY_MS = 86_400_000


class HolderRefused(HealthledgerError):
    """The presentation does not prove a valid vaccination credential of its presenter;
    ``reasons`` are the verdict's reason codes."""

    def __init__(self, message: str, reasons: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reasons = reasons


class NoCdcHere(HealthledgerError):
    """This node holds no CDC epidemiologist's key to read the person's doses with."""


class Presentation(BaseModel):
    """A presentation of one of the holder's credentials."""

    model_config = ConfigDict(extra="forbid")

    presentation: str = Field(
        min_length=1,
        max_length=16_384,
        description="An SD-JWT VC bound to the wallet's key, with a Key Binding JWT whose "
        f"aud is {AUDIENCE!r} and whose iat is within {KEY_BINDING_MAX_AGE_S} s; no "
        "disclosure is needed.",
    )


def _epidemiologist(node: AppNode) -> str:
    kinds = {o["id"]: o.get("kind") for o in node.organisations()}
    for identity in node.identities(role="epidemiologist"):
        if kinds.get(identity.split("/", 1)[0]) == "cdc":
            return identity
    raise NoCdcHere("this node holds no CDC epidemiologist's key: it cannot read doses")


def _shown(found: SeriesPlan) -> dict[str, Any]:
    following = found.next
    return {
        "vaccine": found.schedule.id,
        "name": found.schedule.name,
        "status": found.status,
        "status_title": STATUS_TITLES[found.status],
        "doses": [iso(day) for day in found.valid],
        "too_early": [iso(day) for day in found.too_early],
        "primary_complete": found.primary_complete,
        "next": None
        if following is None
        else {
            "number": following.number,
            "label": following.label,
            "earliest": iso(following.earliest),
            "due": iso(following.due),
            "overdue_from": iso(following.overdue_from),
            "booster": following.booster,
        },
    }


def holder_doses(node: AppNode, presentation: str) -> dict[str, Any]:
    """The presenter's doses due (module docstring); HolderRefused if the presentation
    does not prove a valid vaccination credential held by its presenter."""
    now_s = node.clock() // 1000
    trust, status = ledger_sources(node.shared("service", lambda: CredentialService(node)))
    policy = Policy(require_key_binding=True, audience=AUDIENCE,
                    key_binding_max_age=KEY_BINDING_MAX_AGE_S)  # fmt: skip
    verdict = verify_credential([presentation], trust=trust, status=status, at=now_s,
                                policy=policy)  # fmt: skip
    if not verdict.valid or verdict.format != "sd-jwt-vc" or not verdict.credential_id:
        reasons = tuple(str(r.code.value) for r in verdict.refusals)
        raise HolderRefused("the presentation does not prove a valid, bound SD-JWT VC of "
                            "its presenter", reasons or ("NOT_SD_JWT_VC",))  # fmt: skip
    uci_hash = hashlib.sha256(verdict.credential_id.encode()).hexdigest()
    record = next(
        (r for _, r in node.range("credential/", limit=1_000_000) if r["uci_hash"] == uci_hash),
        None,
    )
    if record is None or record["source"]["kind"] != "vaccination":
        raise HolderRefused("only a vaccination credential recorded on this ledger tells "
                            "which doses are due", ("NOT_A_RECORDED_VACCINATION",))  # fmt: skip
    epidemiologist = _epidemiologist(node)
    args = {"kind": "vaccination", "ids": [str(record["source"]["id"])]}
    source = node.query(epidemiologist, "epidemic", "get_observations", args)[0]
    if source is None:
        raise HolderRefused("the dose this credential was issued from is not in view here",
                            ("SOURCE_NOT_IN_VIEW",))  # fmt: skip
    facts = node.query(epidemiologist, "epidemic", "subject_facts", {"pid": source["pid"]})
    doses = [Dose(str(d["vaccine"]), int(d["day"])) for d in facts["doses"]]
    today = node.clock() // DAY_MS
    return {
        "as_of": iso(today),
        "schedules_version": SCHEDULES_VERSION,
        "series": [_shown(found) for found in plan(doses, as_of=today)],
    }


def doses_due_router(node: AppNode) -> APIRouter:
    """``POST /doses-due``: the holder's own doses due (public: a citizen is no member)."""
    router = APIRouter(tags=["holder's wallet"])

    @router.post(
        "/doses-due",
        summary="The presenting holder's doses due, from a bound vaccination credential",
        responses={
            403: {"description": "The presentation does not prove a valid vaccination "
                  "credential held by its presenter (the reason codes are in the problem)"},
            503: {"description": "This node holds no CDC key to read the person's doses"},
        },
    )  # fmt: skip
    def doses_due(body: Presentation) -> dict[str, Any]:
        """Each vaccine's schedule the holder has started: the doses that count, doses
        given too early (they do not count), the status (complete, scheduled, due,
        overdue) and the next dose with its earliest, due and overdue dates."""
        try:
            return holder_doses(node, body.presentation)
        except HolderRefused as exc:
            raise HTTPException(403, f"{exc} ({', '.join(exc.reasons)})") from None
        except NoCdcHere as exc:
            raise HTTPException(503, str(exc)) from None

    return router


def doses_due_pages(node: AppNode, kit: PageKit) -> APIRouter:
    """``/credentials/doses_due.js``: the wallet's "Doses due" section (public)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/doses_due.js")
    def script() -> Response:
        """The script that asks for the holder's doses due and draws them."""
        return Response(SCRIPT.read_bytes(), media_type="text/javascript")

    return router
