"""Read routes: status, blocks, transactions, receipts, state history, proofs, membership."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query
from pydantic import Field

from healthledger.api.problems import PROBLEM_TYPES, ApiError, problem
from healthledger.api.schemas import (
    MAX_INTEGER,
    StatusOut,
    json_response,
    problem_responses,
)
from healthledger.api.services import MAX_PAGE, LedgerReader
from healthledger.api.verifier import Verifier
from healthledger.ledger.transaction import NAME_RE

TxId = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="Transaction id (hex).")]
LogSize = Annotated[int, Query(ge=1, le=MAX_INTEGER, description="A size of the global log.")]
OptionalLogSize = Annotated[
    int | None, Query(ge=1, le=MAX_INTEGER, description="A size of the global log (default: now).")
]
_NOT_FOUND = problem_responses(404)
_VERDICT_REFUSED: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "Not a transaction id, proof or receipt, or a field of it malformed "
        "(``proof-malformed``); or well formed but not verifying against this ledger "
        "(``proof-invalid``, with ``verified``: false, ``reason`` and ``kind``)"
    }
}


class PeerStatusOut(StatusOut):
    """The node's view of the chain head and, for a consortium peer, of the
    consortium's checkpoints and of its own delivery."""

    org: str | None = Field(None, description="The peer's organisation (consortium peers).")
    checkpoints: dict[str, Any] | None = Field(
        None,
        description="Checkpoint comparison: state ok|diverged|minority|tampered, serving, "
        "each organisation's latest verified checkpoint and whether it agrees.",
    )
    delivery: dict[str, Any] | None = Field(
        None, description="Ordering stream position against the stream's last transaction."
    )
    healthy: bool = Field(
        True, description="False when delivery is stuck, ordering is down or serving stopped."
    )


def ledger_router(
    reader: LedgerReader,
    verifier: Verifier,
    *,
    consortium: Callable[[], dict[str, Any]] | None = None,
) -> APIRouter:
    """Read-only routes over the chain, the global log and membership state;
    ``consortium`` gives a consortium peer's checkpoint and delivery status."""
    router = APIRouter(prefix="/api/v1", responses=_NOT_FOUND)

    @router.get("/status", tags=["chain"], summary="Chain head and global log")
    def status() -> PeerStatusOut:
        """Height, head hash, global log size and root, the custody mode and, for a
        consortium peer, its checkpoint comparison and delivery health."""
        answer = reader.status()
        if consortium is not None:
            answer.update(consortium())
        return PeerStatusOut.model_validate(answer)

    @router.get("/checkpoints", tags=["chain"], summary="Checkpoint comparison")
    def checkpoints() -> dict[str, Any]:
        """This peer's and the other organisations' latest signed checkpoints, how they
        compare, and notes that were rejected (consortium peers only)."""
        if consortium is None:
            raise ApiError(problem("not-found", "this node is not a consortium peer"))
        view: dict[str, Any] = consortium()["checkpoints"]
        return view

    @router.get("/blocks", tags=["chain"], summary="List blocks")
    def blocks(
        start: Annotated[
            int | None,
            Query(alias="from", ge=0, le=MAX_INTEGER, description="First height of the page."),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
        order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    ) -> dict[str, Any]:
        """Block summaries, newest first by default; ``next`` is the ``from`` of the
        following page."""
        return reader.blocks(start, limit, order).to_json()

    @router.get("/blocks/{height}", tags=["chain"], summary="One block")
    def block(height: Annotated[int, Path(ge=0, le=MAX_INTEGER)]) -> dict[str, Any]:
        """A block in its hashed JSON form, with its hash and transaction ids."""
        return reader.block_json(reader.block(height))

    @router.get("/transactions/{tx_id}", tags=["chain"], summary="One transaction")
    def transaction(tx_id: TxId) -> dict[str, Any]:
        """A committed transaction, where it sits and its validation code."""
        return reader.transaction(tx_id)[1]

    @router.get(
        "/transactions/{tx_id}/receipt",
        tags=["chain"],
        summary="A receipt",
        responses={200: json_response("Receipt", "The receipt")},
        response_model=None,
    )
    def receipt(tx_id: TxId) -> dict[str, Any]:
        """The receipt of a committed transaction."""
        return reader.receipt(tx_id)

    @router.get("/state/{contract}/{key:path}/history", tags=["state"], summary="Key history")
    def history(
        contract: Annotated[str, Path(pattern=NAME_RE.pattern)],
        key: str,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """Every change of a state key, newest first."""
        return {"contract": contract, "key": key, "history": reader.history(contract, key, limit)}

    @router.get("/proofs/inclusion/{tx_id}", tags=["proofs"], summary="Inclusion proof")
    def inclusion(tx_id: TxId, tree_size: OptionalLogSize = None) -> dict[str, Any]:
        """RFC 9162 inclusion proof of a transaction in the global log (hashes in base64)."""
        return reader.inclusion_proof(tx_id, tree_size)

    @router.get("/proofs/consistency", tags=["proofs"], summary="Consistency proof")
    def consistency(first: LogSize, second: OptionalLogSize = None) -> dict[str, Any]:
        """RFC 9162 consistency proof between two sizes of the global log."""
        return reader.consistency_proof(first, second)

    @router.post(
        "/proofs/verify",
        tags=["proofs"],
        summary="Verify a proof or receipt",
        responses=_VERDICT_REFUSED,
    )
    def verify(
        submitted: Annotated[
            Any,
            Body(
                description="An inclusion proof (leafIdx, treeSize, root, leafHash, proof), "
                "a receipt, or a transaction id string."
            ),
        ],
    ) -> dict[str, Any]:
        """200 only when the proof, receipt or transaction id is genuine for this ledger,
        with why; otherwise a 422 problem (``proof-malformed`` or ``proof-invalid``)
        whose ``reason`` says why not: a failed verification is never a bare 200."""
        verdict = verifier.check(submitted)
        if not verdict.verified:
            slug = "proof-invalid" if verdict.well_formed else "proof-malformed"
            raise ApiError(problem(slug, verdict.reason, extensions=verdict.to_json()))
        return verdict.to_json()

    @router.get("/consortium/organisations", tags=["consortium"], summary="Organisations")
    def organisations() -> list[dict[str, Any]]:
        """Member organisations, from membership state."""
        return reader.organisations()

    @router.get("/consortium/identities", tags=["consortium"], summary="Identities")
    def identities(
        org: Annotated[str | None, Query(pattern=NAME_RE.pattern)] = None,
    ) -> list[dict[str, Any]]:
        """Registered identities with role, certificate, validity and status."""
        return reader.identities(org)

    @router.get("/problems", tags=["problems"], summary="Problem types")
    def problem_types() -> list[dict[str, Any]]:
        """Every problem type this API returns."""
        return [t.to_json() for t in PROBLEM_TYPES.values()]

    @router.get("/problems/{slug}", tags=["problems"], summary="One problem type")
    def problem_type(slug: str) -> dict[str, Any]:
        """What one problem type means."""
        kind = PROBLEM_TYPES.get(slug)
        if kind is None:
            raise ApiError(problem("not-found", f"no problem type {slug!r}"))
        return kind.to_json()

    return router
