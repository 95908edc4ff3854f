"""Routes between consortium peers: endorsing as this organisation for another peer's
gateway, serving signed checkpoints, the peer directory, and snapshots to join from."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from healthledger.api.bodies import read_signed_call
from healthledger.api.problems import ApiError, problem, problem_for
from healthledger.api.schemas import (
    MAX_INTEGER,
    PROBLEM_RESPONSES,
    json_request,
    json_response,
    problem_responses,
)
from healthledger.contracts.errors import ContractError
from healthledger.node.consortium_peer import peer_org
from healthledger.node.endorsement_answers import CONTRACT_REFUSAL, PRIVATE_FIELD
from healthledger.node.parts import Node
from healthledger.node.peer_directory import DIRECTORY_FILE, PeerDirectory
from healthledger.node.snapshot import MEDIA_TYPE
from healthledger.node.snapshot_serving import (
    gather_notes,
    own_note,
    plan_snapshot,
    record_positions,
    snapshot_lines,
)


def network_router(node: Node) -> APIRouter:
    """The routes a consortium peer serves to the other peers; on an embedded node
    they answer 404. Mounting them makes the peer record the stream position at each
    checkpoint height, which its snapshots need."""
    # Every route answers 404 on a node that is not a consortium peer.
    router = APIRouter(prefix="/api/v1", tags=["network"], responses=problem_responses(404))
    org = peer_org(node.data_dir)
    positions, wrapped = record_positions(node.data_dir, node.peer.checkpoints, node.peer.store)
    if org is not None:
        node.peer.checkpoints = wrapped

    def consortium_org() -> str:
        if org is None:
            raise ApiError(problem("not-found", "this node is not a consortium peer"))
        return org

    def directory() -> PeerDirectory:
        return PeerDirectory.load(node.data_dir / DIRECTORY_FILE)

    @router.post(
        "/network/endorse",
        summary="Endorse as this organisation's peer",
        responses={
            200: json_response("Transaction", "Endorsed by this peer"),
            **PROBLEM_RESPONSES,
        },
        openapi_extra=json_request("SignedProposalBody"),
        response_model=None,
    )
    async def endorse(
        request: Request,
        as_org: Annotated[
            str | None,
            Query(alias="org", description="The organisation the caller expects to endorse."),
        ] = None,
    ) -> dict[str, Any]:
        """Simulate a signed proposal and endorse the result under this peer's own
        identity only, for a gateway gathering several organisations' endorsements.
        Refused for a contract this peer has not installed, and when ``org`` names
        another organisation: a peer never endorses as anyone else.

        A private write to a collection of the proposal creator's organisation (which
        this peer does not hold) is answered in ``private`` beside the transaction:
        ``[{collection, key, salt, value}]``, for the creator's gateway to check against
        the commitment and keep; the transaction itself holds only the commitment. A
        write to any other organisation's collection is refused."""
        mine = consortium_org()
        if as_org is not None and as_org != mine:
            raise ApiError(
                problem(
                    "access-denied",
                    f"this is the peer of {mine}: it endorses only as {mine}, not as {as_org}",
                )
            )
        signed, transient = await read_signed_call(request)
        try:
            endorsed = await run_in_threadpool(
                partial(node.peer.endorse_disclosing, signed, transient=transient)
            )
        except ContractError as exc:
            # Marked, so that the gateway can tell the contract's refusal (a business
            # reason, raised to its caller as on a single node) from a faulty peer.
            refused = problem_for(exc)
            extensions = {**refused.extensions, CONTRACT_REFUSAL: True}
            raise ApiError(replace(refused, extensions=extensions)) from exc
        answer = endorsed.transaction.to_json()
        if endorsed.private:
            answer[PRIVATE_FIELD] = [d.to_json() for d in endorsed.private]
        return answer

    @router.get(
        "/network/checkpoints/{height}",
        summary="This peer's signed checkpoint at a height",
        response_class=PlainTextResponse,
    )
    def checkpoint(height: Annotated[int, Path(ge=0, le=MAX_INTEGER)]) -> PlainTextResponse:
        """The C2SP signed note this peer wrote at ``height`` (404 if none)."""
        consortium_org()
        note = own_note(node.data_dir, height) if height > 0 else None
        if note is None:
            raise ApiError(problem("not-found", f"this peer signed no checkpoint at {height}"))
        return PlainTextResponse(note)

    @router.get("/network/peers", summary="The peer directory")
    def peers() -> dict[str, Any]:
        """Where each organisation's peer serves its API, as this peer knows it."""
        consortium_org()
        return directory().to_json()

    @router.get(
        "/snapshot",
        summary="A snapshot to join from",
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
                "description": "NDJSON snapshot",
            },
            **problem_responses(503),
        },
    )
    async def snapshot() -> StreamingResponse:
        """The ledger up to this peer's latest checkpoint height H that a majority of
        organisations have signed, as NDJSON: a manifest (height, block hash, log and
        state roots, stream position after H, content hash) with those signed
        checkpoints, then blocks 0..H. 503 while no checkpoint is vouched for yet."""
        mine = consortium_org()
        peers_now = directory()

        def notes_at(height: int) -> dict[str, str]:
            return gather_notes(
                height, own_org=mine, own=own_note(node.data_dir, height), directory=peers_now
            )

        plan = await run_in_threadpool(plan_snapshot, node.peer.store, positions, notes_at)
        return StreamingResponse(
            snapshot_lines(node.peer.store, plan),
            media_type=MEDIA_TYPE,
            headers={"X-Snapshot-Height": str(plan.manifest.height)},
        )

    return router
