"""A small contract used by the platform tests: a shared notebook of entries."""

from __future__ import annotations

from typing import Any

from healthledger.contracts.context import Context
from healthledger.contracts.contract import Contract, query, transaction
from healthledger.contracts.errors import Rejected


class Notebook(Contract):
    """Entries any peer may endorse; a few functions with stricter policies."""

    name = "notebook"
    policy = "OR('*.peer')"

    @transaction()
    def put(self, ctx: Context, *, key: str, value: int) -> dict[str, Any]:
        """Set an entry."""
        old = ctx.get(key)
        ctx.put(key, {"value": value, "by": ctx.caller.id, "at": ctx.timestamp})
        ctx.emit("entry_set", {"key": key, "value": value})
        return {"key": key, "previous": old}

    @transaction()
    def add(self, ctx: Context, *, key: str, amount: int) -> int:
        """Add ``amount`` to an entry (read then write: MVCC-sensitive)."""
        current = ctx.get(key)
        total = (current["value"] if current else 0) + amount
        ctx.put(key, {"value": total, "by": ctx.caller.id, "at": ctx.timestamp})
        return total

    @transaction(policy="AND('gd-cdc.peer', 'gd-commission.peer')")
    def confirm(self, ctx: Context, *, key: str) -> None:
        """Needs the CDC's and the commission's peers."""
        ctx.put(key, {"confirmed": True})

    @transaction()
    def lock(self, ctx: Context, *, key: str, policy: str) -> None:
        """Put a state-based policy on ``key``."""
        ctx.set_key_policy(key, policy)

    @transaction()
    def remove(self, ctx: Context, *, key: str) -> None:
        """Delete an entry."""
        if ctx.get(key) is None:
            raise Rejected(f"no entry {key}")
        ctx.delete(key)

    @transaction()
    def put_float(self, ctx: Context, *, key: str) -> None:
        """Tries to store a float: refused by the framework."""
        ctx.put(key, {"value": 0.5})

    @transaction()
    def crash(self, ctx: Context, *, key: str) -> None:
        """A contract bug."""
        raise ZeroDivisionError(key)

    @transaction()
    def keep_secret(self, ctx: Context, *, key: str) -> None:
        """Private data from the transient map: the value in the caller org's vault, a
        commitment on chain."""
        secret = ctx.transient.get("secret")
        if not isinstance(secret, str):
            raise Rejected("transient field 'secret' (a string) is required")
        ctx.put_private(f"{ctx.caller.org}/secrets", key, {"secret": secret})
        ctx.put(key, {"has_secret": True})

    @query()
    def get(self, ctx: Context, *, key: str) -> Any:
        """One entry."""
        return ctx.get(key)

    @query()
    def secret(self, ctx: Context, *, key: str) -> Any:
        """A private value of the caller's organisation, if this peer holds it."""
        return ctx.get_private(f"{ctx.caller.org}/secrets", key)

    @query()
    def entries(self, ctx: Context, *, start: str = "", end: str = "") -> list[Any]:
        """Entries in a key range."""
        return [[k, v] for k, v in ctx.range(start, end)]

    @query()
    def history(self, ctx: Context, *, key: str) -> list[dict[str, Any]]:
        """Changes of an entry."""
        return ctx.history(key)
