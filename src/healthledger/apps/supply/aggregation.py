"""Unit records in the ``supply`` state and the aggregation tree (pallet > case > pack > unit).

Helpers of the ``supply`` contract: they read state through the transaction's
:class:`Context` and refuse with :class:`Rejected`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from healthledger.apps.supply.capture_step import DATE, MAX_DEPTH, CaptureStep, day_of
from healthledger.contracts.context import Context
from healthledger.contracts.errors import AccessDenied, Rejected


def unit_key(unit: str) -> str:
    """The state key of a unit's record."""
    return f"unit/{unit}"


def anchor_key(event_hash: str) -> str:
    """The state key of an event hash's anchor."""
    return f"anchor/{event_hash[14:78]}"


def trail_key(unit: str, seq: int | None = None) -> str:
    """The state key of a unit's ``seq``-th trail entry (None: the prefix of them all)."""
    return f"trail/{unit}/" if seq is None else f"trail/{unit}/{seq:08d}"


TRAIL_FIELDS = (
    "event_hash", "op", "org", "location", "destination", "tx_id", "at", "accepted", "reason",
    "temperature_range_dc",
)  # fmt: skip
"""What a trail entry tells of its event (from the event's anchor), besides ``via``."""


def trail_entry(entry: dict[str, Any], anchor: dict[str, Any] | None) -> dict[str, Any]:
    """A trail entry with the facts of its event read from the event's anchor. ``via`` is
    the container named in the event through which it reached the unit (None: the unit
    was named itself). Entries written before trails referenced anchors carry the facts."""
    if anchor is None or "op" in entry:
        return dict(entry)
    return {k: anchor.get(k) for k in TRAIL_FIELDS} | {"via": entry.get("via")}


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


def require_unit(ctx: Context, unit: str) -> dict[str, Any]:
    """A copy of the unit's record; Rejected if it was never commissioned."""
    record = ctx.get(unit_key(unit))
    if record is None:
        raise Rejected(f"{unit} is not a commissioned unit")
    return dict(record)


def require_custody(ctx: Context, record: dict[str, Any], verb: str) -> None:
    """The caller's organisation holds the unit and it is active, or AccessDenied/Rejected."""
    if record["custodian"] != ctx.caller.org:
        raise AccessDenied(
            f"{ctx.caller.org} may not {verb} {record['unit']}: "
            f"its custodian is {record['custodian']}"
        )
    if record["status"] != "active":
        raise Rejected(f"{record['unit']} is {record['status']}: cannot {verb} it")


class MasterData:
    """Products and locations as one transaction sees them, each read from state once.

    A document names the same product and locations event after event, and master
    data changes only through its own transactions, never during a capture."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._found: dict[str, Any] = {}

    def product(self, gtin: str) -> Any:
        """The registered product of ``gtin``, or None."""
        return self._get(f"product/{gtin}")

    def location(self, gln: str) -> Any:
        """The registered location of ``gln``, or None."""
        return self._get(f"location/{gln}")

    def _get(self, key: str) -> Any:
        if key not in self._found:
            self._found[key] = self._ctx.get(key)
        return self._found[key]


def require_own_location(ctx: Context, master: MasterData, gln: str | None) -> None:
    """``gln`` is a registered location of the caller's organisation."""
    if gln is None:
        raise Rejected("the event needs a location GLN")
    location = master.location(gln)
    if location is None or location["org"] != ctx.caller.org:
        raise AccessDenied(f"GLN {gln} is not a location of {ctx.caller.org}")


def is_recalled(ctx: Context, record: dict[str, Any]) -> bool:
    """The unit is recalled by serial or through its lot."""
    if record.get("recalled"):
        return True
    return ctx.get(f"recalled_lot/{record['gtin']}/{record['lot']}") is not None


def new_unit(
    ctx: Context, step: CaptureStep, master: MasterData, unit: str, *, not_a_unit: str
) -> dict[str, Any]:
    """The record of ``unit`` (a GTIN+serial EPC) as ``step`` brings it into being for
    the caller, who must be its GTIN's maker: in the caller's custody at the step's
    location, expiry from the step or the product's shelf life. ``not_a_unit`` is the
    refusal for an EPC that is not GTIN+serial."""
    if not unit.startswith("01/"):
        raise Rejected(f"{unit}: {not_a_unit}")
    gtin = unit[3:17]
    product = master.product(gtin)
    if product is None:
        raise Rejected(f"{unit}: GTIN {gtin} is not registered")
    if product["maker"] != ctx.caller.org:
        raise AccessDenied(
            f"{unit}: only {product['maker']}, the maker of GTIN {gtin}, may commission it"
        )
    if ctx.get(unit_key(unit)) is not None:
        raise Rejected(f"{unit} is already commissioned")
    expiry = step.expiry
    if expiry is None:
        expiry = (day_of(ctx.timestamp) + timedelta(days=product["shelf_life_days"])).isoformat()
    elif not DATE.match(expiry):
        raise Rejected(f"expiry {expiry!r} is not YYYY-MM-DD")
    return {
        "unit": unit,
        "gtin": gtin,
        "serial": unit[21:],
        "lot": step.lot,
        "expiry": expiry,
        "maker": ctx.caller.org,
        "status": "active",
        "custodian": ctx.caller.org,
        "location": step.location,
        "destination": None,
        "parent": None,
        "children": [],
        "recalled": None,
        "quarantined": False,
        "seq": 1,
        "last_event": step.event_hash,
        "last_tx": ctx.tx_id,
    }
