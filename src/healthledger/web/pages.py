"""The console's pages: each person's home, the explorer (chain head, blocks,
transactions), consortium and verify."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from healthledger.api.problems import ApiError, problem, problem_for
from healthledger.contracts.errors import ContractError
from healthledger.crypto.errors import CryptoError
from healthledger.ledger.errors import LedgerError
from healthledger.node.errors import NodeError
from healthledger.web.views import Console, Viewer

PAGE_SIZE = 20
REFUSALS = (ApiError, ContractError, NodeError, LedgerError, CryptoError)
"""Errors a write from the console reports on the page instead of as an error page."""


def page_router(console: Console) -> APIRouter:
    """Every page of the console (none of them in the OpenAPI document)."""
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
    reader = console.reader
    verifier = console.services.verifier
    transactor = console.services.transactor

    @router.get("/")
    def home(request: Request) -> HTMLResponse:
        """What the logged-in person must do today, from every application's panels;
        without a login, the public pages and the way in."""
        viewer = console.viewer(request)
        if viewer is None:
            return console.render(request, "public_home.html", None)
        return console.render(request, "today.html", viewer, panels=console.home_panels(viewer))

    @router.get("/explorer")
    def explorer(request: Request) -> HTMLResponse:
        """Chain head, counts by validation code and the latest blocks (live)."""
        viewer = console.require_viewer(request)
        status = reader.status()
        return console.render(
            request,
            "explorer.html",
            viewer,
            head=status,
            counts=reader.tally.counts(),
            recent=reader.blocks(None, 10).items,
        )

    @router.get("/blocks")
    def block_list(
        request: Request,
        start: Annotated[int | None, Query(alias="from", ge=0)] = None,
        order: Literal["asc", "desc"] = "desc",
    ) -> HTMLResponse:
        """The block explorer: a page of blocks."""
        viewer = console.require_viewer(request)
        return console.render(
            request, "blocks.html", viewer, page=reader.blocks(start, PAGE_SIZE, order)
        )

    @router.get("/blocks/{height}")
    def block_detail(request: Request, height: Annotated[int, Path(ge=0)]) -> HTMLResponse:
        """One block: header fields and its transactions with their validation codes."""
        viewer = console.require_viewer(request)
        block = reader.block(height)
        rows = [
            {
                "index": index,
                "tx_id": tx.tx_id,
                "call": f"{tx.proposal.contract}.{tx.proposal.function}",
                "creator": tx.proposal.creator,
                "code": str(code),
            }
            for index, (tx, code) in enumerate(zip(block.transactions, block.codes, strict=True))
        ]
        return console.render(
            request,
            "block.html",
            viewer,
            block=block,
            header=block.header.to_json(),
            rows=rows,
            height=reader.status()["height"],
        )

    @router.get("/tx/{tx_id}")
    def transaction_detail(
        request: Request, tx_id: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]
    ) -> HTMLResponse:
        """One transaction: proposal, endorsements, rwset, events, receipt and proof."""
        viewer = console.require_viewer(request)
        tx, view = reader.transaction(tx_id)
        proof = reader.inclusion_proof(tx_id)
        people = {
            who: reader.identity(who) or {}
            for who in {tx.proposal.creator, *(e.endorser for e in tx.endorsements)}
        }
        return console.render(
            request,
            "tx.html",
            viewer,
            tx=tx,
            view=view,
            people=people,
            receipt=reader.receipt(tx_id),
            proof=proof,
            verdict=verifier.check(proof),
            head=reader.status(),
        )

    def consortium_page(
        request: Request, viewer: Viewer | None, *, outcome: dict[str, Any] | None, status: int
    ) -> HTMLResponse:
        organisations = reader.organisations()
        identities = reader.identities()
        counts: dict[str, dict[str, int]] = {}
        for identity in identities:
            tally = counts.setdefault(identity["org"], {"active": 0, "revoked": 0})
            state = str(identity.get("status", "active"))
            tally[state] = tally.get(state, 0) + 1
        return console.render(
            request,
            "consortium.html",
            viewer,
            status=status,
            organisations=organisations,
            counts=counts,
            identities=identities,
            revocations=reader.revocations(),
            workers=console.services.worker_states(),
            outcome=outcome,
        )

    @router.get("/consortium")
    def consortium(request: Request) -> HTMLResponse:
        """Organisations, identities and revocations, with the revoke form."""
        viewer = console.require_viewer(request)
        return consortium_page(request, viewer, outcome=None, status=200)

    @router.post("/consortium/revoke")
    async def revoke(
        request: Request,
        identity: Annotated[str, Form()],
        reason: Annotated[str, Form()],
        csrf: Annotated[str, Form()],
    ) -> HTMLResponse:
        """Revoke an identity, signed as the logged-in identity; shows the refusal if any."""
        viewer = await run_in_threadpool(console.require_viewer, request)
        console.check_csrf(viewer, csrf)
        status = 200
        try:
            if viewer is None:
                raise ApiError(problem("access-denied", "log in to sign"))
            signed, _ = console.propose(
                request, "membership", "revoke_identity", {"identity": identity, "reason": reason}
            )
            receipt, _ = await transactor.invoke(signed, timeout=30.0)
            outcome: dict[str, Any] = {"ok": True, "identity": identity, "receipt": receipt}
        except REFUSALS as exc:
            found = problem_for(exc)
            status = found.status
            outcome = {"ok": False, "identity": identity, "problem": found}
        return await run_in_threadpool(
            consortium_page, request, viewer, outcome=outcome, status=status
        )

    @router.get("/verify")
    def verify_form(request: Request, q: str | None = None) -> HTMLResponse:
        """The public verify page (no login): paste a transaction id, receipt or proof."""
        verdict = verifier.check_text(q) if q else None
        return console.render(
            request, "verify.html", console.viewer(request), submission=q or "", verdict=verdict
        )

    @router.post("/verify")
    def verify_submit(request: Request, submission: Annotated[str, Form()]) -> HTMLResponse:
        """Check a pasted transaction id, receipt or proof against the current log."""
        return console.render(
            request,
            "verify.html",
            console.viewer(request),
            submission=submission,
            verdict=verifier.check_text(submission),
        )

    return router
