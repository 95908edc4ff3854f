"""Epidemic contract calls endorsed together, ordered together and awaited together
(the simulator's reports and reviews, the early-warning scan's alerts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from healthledger.contracts.errors import ContractError
from healthledger.ledger.transaction import Transaction, ValidationCode
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.errors import NodeError, TransactionRefused

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
    endorsed: list[Transaction | None] = []
    for call in calls:
        salted = None if call.transient is None else node.keystore.with_salt(call.transient)
        signed = node.propose(call.identity, "epidemic", call.function, call.args, transient=salted)
        try:
            endorsed.append(node.peer.endorse(signed, transient=salted))
        except (ContractError, TransactionRefused):
            endorsed.append(None)
    ordered = [tx for tx in endorsed if tx is not None]
    futures = iter(node.peer.submit_many(ordered) if ordered else [])
    results: list[Any] = []
    for tx in endorsed:
        if tx is None:
            results.append(None)
            continue
        try:
            receipt = next(futures).result(timeout=COMMIT_TIMEOUT_S)
        except (ContractError, NodeError):
            results.append(None)
            continue
        results.append(tx.response.result if receipt.code is ValidationCode.VALID else None)
    return results
