"""Epidemic contract calls endorsed together, ordered together and awaited together
(the simulator's reports and reviews, the early-warning scan's alerts)."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from healthledger.contracts.errors import ContractError
from healthledger.ledger.transaction import Transaction, ValidationCode
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.errors import TransactionRefused
from healthledger.node.peer import Receipt

COMMIT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Call:
    """One epidemic contract call the simulator makes."""

    identity: str
    function: str
    args: dict[str, Any]
    transient: dict[str, Any] | None = None


def commit_all(node: EmbeddedNode, calls: list[Call]) -> list[Any]:
    """Endorse every call, order them together and wait for the commits: each call's
    result, or None where the contract refused it or it committed invalid."""
    pending: list[tuple[Transaction, Future[Receipt]] | None] = []
    for call in calls:
        salted = None if call.transient is None else node.keystore.with_salt(call.transient)
        signed = node.propose(call.identity, "epidemic", call.function, call.args, transient=salted)
        try:
            tx = node.peer.endorse(signed, transient=salted)
            pending.append((tx, node.peer.submit(tx)))
        except (ContractError, TransactionRefused):
            pending.append(None)
    results: list[Any] = []
    for item in pending:
        if item is None:
            results.append(None)
            continue
        tx, future = item
        receipt = future.result(timeout=COMMIT_TIMEOUT_S)
        results.append(tx.response.result if receipt.code is ValidationCode.VALID else None)
    return results
