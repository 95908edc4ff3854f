"""Write and query routes: endorse, submit, invoke, query, and the demo-custody calls."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from healthledger.api.batches import endorse_batch, submit_batch
from healthledger.api.bodies import (
    read_record,
    read_signed_call,
    read_signed_proposal,
    read_transaction,
)
from healthledger.api.schemas import (
    PROBLEM_RESPONSES,
    DemoCallBody,
    ProposalBatchBody,
    QueryOut,
    SubmittedOut,
    TransactionBatchBody,
    json_request,
    json_response,
)
from healthledger.api.services import CUSTODY_NOTICE
from healthledger.api.transactor import MAX_WAIT_S, Transactor
from healthledger.crypto.canonical import parse_canonical

Timeout = Annotated[
    float,
    Query(gt=0, le=MAX_WAIT_S, description="Seconds to wait for the commit (at most 60)."),
]


async def canonical_body(request: Request) -> Any:
    """The exact body the client sent, parsed in the canonical JSON profile (no floats,
    no duplicate keys): what the ledger verifies is what was signed."""
    return parse_canonical(await request.body())


def transactions_router(transactor: Transactor) -> APIRouter:
    """Routes that endorse, order and query with client-signed proposals.

    The write routes answer a ``JSONResponse`` of the records' own JSON: a returned
    dict would be walked again by FastAPI's ``jsonable_encoder`` (every value of every
    transaction in a batch), a fifth of a busy peer's interpreter time in the
    ``bench network --clients`` profile, for the same bytes."""
    router = APIRouter(prefix="/api/v1", tags=["transactions"], responses=PROBLEM_RESPONSES)

    @router.post(
        "/proposals/endorse",
        summary="Endorse a signed proposal",
        responses={200: json_response("Transaction", "The endorsed transaction")},
        openapi_extra=json_request("SignedProposalBody"),
        response_model=None,
    )
    async def endorse(request: Request) -> JSONResponse:
        """Simulate a signed proposal and return the endorsed transaction for the client
        to check and submit to ``POST /api/v1/transactions``. A ``transient`` object
        beside the proposal (bound by its ``transient_hash``) goes to the contract
        only; the transaction returned holds none of it."""
        signed, transient = await read_signed_call(request)
        endorsed = await run_in_threadpool(transactor.endorse, signed, transient)
        return JSONResponse(endorsed.to_json())

    @router.post(
        "/transactions",
        summary="Submit an endorsed transaction",
        responses={
            200: json_response("Receipt", "Committed: the receipt"),
            202: {"model": SubmittedOut, "description": "Accepted for ordering (wait=false)"},
        },
        openapi_extra=json_request("TransactionBody"),
    )
    async def submit(
        request: Request,
        wait: Annotated[bool, Query(description="Wait for the commit.")] = True,
        timeout: Timeout = 30.0,
    ) -> JSONResponse:
        """Check an endorsed transaction against the current state, order it and (by
        default) wait for its receipt."""
        tx = await read_transaction(request)
        location = f"/api/v1/transactions/{tx.tx_id}/receipt"
        if not wait:
            await transactor.submit_nowait(tx)
            return JSONResponse(
                {"tx_id": tx.tx_id, "status": "submitted", "receipt": location},
                status_code=202,
                headers={"Location": location},
            )
        receipt = await transactor.submit(tx, timeout=timeout)
        return JSONResponse(receipt.to_json(), headers={"Location": location})

    @router.post(
        "/proposals/endorse/batch",
        summary="Endorse many signed proposals",
        responses={200: json_response("EndorsedBatchOut", "Each proposal's outcome, in order")},
        openapi_extra=json_request("ProposalBatchBody"),
        response_model=None,
    )
    async def endorse_many(request: Request) -> JSONResponse:
        """Endorse up to 200 signed proposals, each as ``/proposals/endorse`` endorses
        one: per proposal, in the order sent, its endorsed transaction or the problem
        that refused it (the others are endorsed all the same)."""
        body = await read_record(request, ProposalBatchBody)
        return JSONResponse(await endorse_batch(transactor, body, request.url.path))

    @router.post(
        "/transactions/batch",
        summary="Submit many endorsed transactions",
        responses={200: json_response("CommittedBatchOut", "Each transaction's outcome, in order")},
        openapi_extra=json_request("TransactionBatchBody"),
        response_model=None,
    )
    async def submit_many(request: Request, timeout: Timeout = 30.0) -> JSONResponse:
        """Check up to 200 endorsed transactions, each as ``/transactions`` checks one,
        order those that pass together and wait for their commits: per transaction, in
        the order sent, its receipt once committed valid or the problem that refused it
        (refused before ordering, invalidated at commit, or not committed in time)."""
        body = await read_record(request, TransactionBatchBody)
        answer = await submit_batch(transactor, body, request.url.path, timeout=timeout)
        return JSONResponse(answer)

    @router.post(
        "/invoke",
        summary="Endorse, order and await a signed proposal",
        responses={200: json_response("InvokeOut", "Committed: the receipt and the result")},
        openapi_extra=json_request("SignedProposalBody"),
        response_model=None,
    )
    async def invoke(request: Request, timeout: Timeout = 30.0) -> JSONResponse:
        """Endorse, order and await a client-signed proposal of a transaction function,
        with optional private inputs in ``transient`` (see ``/proposals/endorse``)."""
        signed, transient = await read_signed_call(request)
        receipt, result = await transactor.invoke(signed, timeout=timeout, transient=transient)
        return JSONResponse({"receipt": receipt.to_json(), "result": result, "custody": "client"})

    @router.post(
        "/query", summary="Run a signed query", openapi_extra=json_request("SignedProposalBody")
    )
    async def query(request: Request) -> QueryOut:
        """Run a query function as the proposal's signed creator; nothing is ordered."""
        signed = await read_signed_proposal(request)
        result = await transactor.query(signed)
        return QueryOut(result=result, custody="client")

    return router


def demo_router(transactor: Transactor) -> APIRouter:
    """Demo custody: the server signs with the key it holds for the named identity."""
    router = APIRouter(
        prefix="/api/v1/demo",
        tags=["demo custody"],
        responses=PROBLEM_RESPONSES,
    )
    notice = {"custody": "demo", "custody_notice": CUSTODY_NOTICE}

    @router.post("/invoke", summary="Invoke as a demo identity (server signs)")
    async def demo_invoke(
        request: Request, body: DemoCallBody, timeout: Timeout = 30.0
    ) -> dict[str, Any]:
        """Sign as ``identity`` with the server-held demo key, endorse, order and await.
        Demo custody only: never in production. ``transient`` is salted by the server
        and bound by hash; it is never stored on chain, logged or echoed."""
        raw = await canonical_body(request)
        signed, transient = transactor.demo_call(
            raw["identity"],
            raw["contract"],
            raw["function"],
            raw.get("args", {}),
            raw.get("transient"),
        )
        receipt, result = await transactor.invoke(signed, timeout=timeout, transient=transient)
        return {"receipt": receipt.to_json(), "result": result, "tx_id": signed.tx_id, **notice}

    @router.post("/query", summary="Query as a demo identity (server signs)")
    async def demo_query(request: Request, body: DemoCallBody) -> dict[str, Any]:
        """Run a query signed with the server-held demo key of ``identity``."""
        raw = await canonical_body(request)
        signed = transactor.demo_proposal(
            raw["identity"], raw["contract"], raw["function"], raw.get("args", {})
        )
        return {"result": await transactor.query(signed), **notice}

    return router
