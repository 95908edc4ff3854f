"""Epidemic contract calls endorsed together, ordered together and awaited together
(the simulator's reports and reviews, the early-warning scan's alerts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from healthledger.node.seam import AppNode
from healthledger.node.seam import Call as SeamCall

COMMIT_TIMEOUT_S = 30.0
CONTRACT = "epidemic"


@dataclass(frozen=True)
class Call:
    """One epidemic contract call the simulator makes."""

    identity: str
    function: str
    args: dict[str, Any]
    transient: dict[str, Any] | None = None


def commit_all(node: AppNode, calls: list[Call]) -> list[Any]:
    """Endorse every call, order them together and wait for the commits: each call's
    result, or None where the contract refused it or it committed invalid."""
    outcomes = node.invoke_many(
        [SeamCall(c.identity, CONTRACT, c.function, c.args, c.transient) for c in calls],
        timeout=COMMIT_TIMEOUT_S,
    )
    return [outcome.result if outcome.valid else None for outcome in outcomes]
