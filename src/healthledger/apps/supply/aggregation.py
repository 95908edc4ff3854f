"""Unit records in the ``supply`` state and the aggregation tree (pallet > case > pack > unit).

Helpers of the ``supply`` contract: they read state through the transaction's
:class:`Context` and refuse with :class:`Rejected`.
"""

from __future__ import annotations

from typing import Any

from healthledger.apps.supply.capture_step import MAX_DEPTH
from healthledger.contracts.context import Context
from healthledger.contracts.errors import Rejected


def unit_key(unit: str) -> str:
    """The state key of a unit's record."""
    return f"unit/{unit}"


def anchor_key(event_hash: str) -> str:
    """The state key of an event hash's anchor."""
    return f"anchor/{event_hash[14:78]}"


def container_record(unit: str, org: str, location: str | None) -> dict[str, Any]:
    """A new logistic unit (SSCC) record, first seen when something is packed into it."""
    return {
        "unit": unit,
        "gtin": None,
        "serial": unit[3:],
        "lot": None,
        "expiry": None,
        "maker": org,
        "status": "active",
        "custodian": org,
        "location": location,
        "destination": None,
        "parent": None,
        "children": [],
        "recalled": None,
        "quarantined": False,
        "seq": 0,
    }


def maker_of(ctx: Context, unit: str) -> str | None:
    """The maker of a GTIN+serial unit's product, or None."""
    if unit.startswith("01/"):
        product = ctx.get(f"product/{unit[3:17]}")
        if product is not None:
            return str(product["maker"])
    return None


def with_descendants(ctx: Context, unit: str, depth: int = 0) -> list[str]:
    """``unit`` and everything aggregated under it, depth first."""
    if depth > MAX_DEPTH:
        raise Rejected(f"aggregation under {unit} is deeper than {MAX_DEPTH}")
    record = ctx.get(unit_key(unit))
    found = [unit]
    for child in (record or {}).get("children", []):
        found.extend(with_descendants(ctx, child, depth + 1))
    return found


def depth_below(ctx: Context, record: dict[str, Any]) -> int:
    """How many levels hang under ``record`` (a lone unit: 0)."""
    children = record.get("children") or []
    if not children:
        return 0
    return 1 + max(depth_below(ctx, ctx.get(unit_key(c)) or {}) for c in children)


def height_above(ctx: Context, unit: str) -> int:
    """How many parents ``unit`` sits in."""
    record = ctx.get(unit_key(unit))
    height = 0
    while record is not None and record.get("parent") and height <= MAX_DEPTH:
        height += 1
        record = ctx.get(unit_key(record["parent"]))
    return height
