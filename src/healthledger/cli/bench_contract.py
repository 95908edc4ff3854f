"""The benchmark contract, in a module of its own: a contract's code hash covers its
source, and finding a class's source parses its whole module on every endorsement,
so a small module keeps that cost out of the figures' set-up."""

from __future__ import annotations

from healthledger.contracts.context import Context
from healthledger.contracts.contract import Contract, transaction


class BenchContract(Contract):
    """Writes one key per call: the cheapest transaction the platform can commit."""

    name = "bench"
    policy = "OR('*.peer')"

    @transaction()
    def put(self, ctx: Context, *, key: str, value: int) -> None:
        """Set ``key`` to ``value``."""
        ctx.put(key, value)
