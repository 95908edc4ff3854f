"""Many client-signed calls in one request: ``POST /api/v1/proposals/endorse/batch``
and ``POST /api/v1/transactions/batch``.

Each proposal is still signed by its creator and endorsed on its own, each transaction
still checked on its own, ordered, validated by every peer and given its own receipt;
what the batch saves is a request per call, and the peer orders the accepted ones
together. A call refused for its own reason (a bad signature, a replay, a contract's
refusal) gets its own problem details in its place of the answer, and the others go
on; a body that is not a batch (empty, over ``api.schemas.MAX_BATCH`` calls, malformed) is one 422
problem for the whole request, and nothing of it is endorsed or ordered.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from starlette.concurrency import run_in_threadpool

from healthledger.api.problems import ApiError, problem_for
from healthledger.api.schemas import ProposalBatchBody, TransactionBatchBody
from healthledger.api.transactor import MAX_WAIT_S, Transactor
from healthledger.contracts.refusal import settle
from healthledger.errors import HealthledgerError
from healthledger.ledger.receipt import Receipt
from healthledger.ledger.transaction import SignedProposal, Transaction


def _problem(exc: BaseException, instance: str) -> dict[str, Any]:
    return problem_for(exc).to_json(instance)


def _endorse_each(
    transactor: Transactor, calls: Sequence[tuple[SignedProposal, Mapping[str, Any] | None] | None]
) -> list[Transaction | BaseException]:
    out: list[Transaction | BaseException] = []
    for call in calls:
        if call is None:
            continue
        try:
            out.append(transactor.endorse(*call))
        except HealthledgerError as exc:
            out.append(exc)
    return out


async def endorse_batch(
    transactor: Transactor, body: ProposalBatchBody, instance: str
) -> dict[str, Any]:
    """Endorse every proposal of ``body`` (one worker thread for the batch); the answer
    as :class:`EndorsedBatchOut` describes it."""
    calls: list[tuple[SignedProposal, Mapping[str, Any] | None] | None] = []
    unsigned: dict[int, ApiError] = {}
    for i, item in enumerate(body.proposals):
        try:
            calls.append((item.signed(f"proposal {i}"), item.transient))
        except ApiError as exc:
            unsigned[i] = exc
            calls.append(None)
    done = iter(await run_in_threadpool(_endorse_each, transactor, calls))
    results: list[dict[str, Any]] = []
    for i, call in enumerate(calls):
        outcome: Transaction | BaseException = unsigned[i] if call is None else next(done)
        if isinstance(outcome, Transaction):
            results.append({"transaction": outcome.to_json()})
        else:
            results.append({"problem": _problem(outcome, f"{instance}#{i}")})
    endorsed = sum("transaction" in r for r in results)
    return {"results": results, "endorsed": endorsed, "refused": len(results) - endorsed}


async def submit_batch(
    transactor: Transactor, body: TransactionBatchBody, instance: str, *, timeout: float
) -> dict[str, Any]:
    """Check every transaction of ``body``, order those that pass together and await
    their commits (at most ``timeout`` s in all); the answer as
    :class:`CommittedBatchOut` describes it."""
    deadline = time.monotonic() + min(timeout, MAX_WAIT_S)
    txs: list[Transaction | BaseException] = []
    for item in body.transactions:
        try:
            txs.append(item.transaction())
        except (ApiError, HealthledgerError) as exc:
            txs.append(exc)
    ordered = [tx for tx in txs if isinstance(tx, Transaction)]
    futures: list[Future[Receipt]] = await run_in_threadpool(
        transactor.checked_submit_many, ordered
    )
    remaining = max(0.001, deadline - time.monotonic())
    settled = iter(
        await transactor.committed_many(
            [(tx.tx_id, future) for tx, future in zip(ordered, futures, strict=True)], remaining
        )
    )
    results: list[dict[str, Any]] = []
    for i, tx in enumerate(txs):
        refusal: BaseException
        if not isinstance(tx, Transaction):
            refusal = tx
        else:
            outcome = next(settled)
            if isinstance(outcome, BaseException):
                refusal = outcome
            else:
                receipt_json = outcome.to_json()
                try:
                    settle(tx.tx_id, receipt_json, tx.response.result)
                except HealthledgerError as exc:
                    refusal = exc
                else:
                    results.append({"receipt": receipt_json})
                    continue
        results.append({"problem": _problem(refusal, f"{instance}#{i}")})
    committed = sum("receipt" in r for r in results)
    return {"results": results, "committed": committed, "refused": len(results) - committed}
