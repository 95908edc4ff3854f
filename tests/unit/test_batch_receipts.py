"""Awaiting a batch's commits together (``api.transactor.receipts_of``): each
transaction gets its receipt, the refusal its future holds, transaction-invalidated
for a commit marked invalid, or commit-timeout for one still pending at the timeout;
the futures settle in another thread, as the peer's commit thread settles them."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

from healthledger.api.problems import ApiError
from healthledger.api.transactor import receipts_of
from healthledger.ledger.receipt import Receipt
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.errors import NodeUnavailable

HASH = "ab" * 32


def _receipt(tx_id: str, code: ValidationCode) -> Receipt:
    return Receipt(
        tx_id=tx_id,
        height=3,
        index=0,
        code=code,
        valid=code is ValidationCode.VALID,
        block_hash=HASH,
        log_index=7,
        timestamp=1_700_000_000_000,
    )


def test_each_transaction_gets_its_own_outcome() -> None:
    ids = [f"{i:064x}" for i in range(4)]
    futures: list[Future[Receipt]] = [Future() for _ in ids]

    def commit() -> None:
        futures[0].set_result(_receipt(ids[0], ValidationCode.VALID))
        futures[1].set_exception(NodeUnavailable("the stream is down"))
        futures[2].set_result(_receipt(ids[2], ValidationCode.MVCC_READ_CONFLICT))
        # futures[3] never settles

    threading.Timer(0.05, commit).start()
    outcomes = asyncio.run(receipts_of(list(zip(ids, futures, strict=True)), 0.5))
    assert isinstance(outcomes[0], Receipt) and outcomes[0].tx_id == ids[0]
    assert isinstance(outcomes[1], NodeUnavailable)
    for i, kind in ((2, "transaction-invalidated"), (3, "commit-timeout")):
        outcome = outcomes[i]
        assert isinstance(outcome, ApiError)
        answer = outcome.problem.to_json("/x")
        assert answer["type"].endswith(kind) and ids[i] in answer["detail"]


def test_all_settled_before_the_wait_and_an_empty_batch_answer_at_once() -> None:
    tx_id = "cd" * 32
    done: Future[Receipt] = Future()
    done.set_result(_receipt(tx_id, ValidationCode.VALID))
    outcomes = asyncio.run(receipts_of([(tx_id, done)], 30.0))
    assert isinstance(outcomes[0], Receipt) and outcomes[0].tx_id == tx_id
    assert asyncio.run(receipts_of([], 30.0)) == []
