"""What a supply role has to work on: a maker's products, lots, quality holds and
recalls; a distributor's or pharmacy's incoming shipments and stock. Read from
committed state in one pass over the units, for the homes and the forms."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from healthledger.apps.supply.verification import PublicLedger, today_of

MAX_UNITS = 20_000
"""Units read for one worklist: the demo's ledger stays well below."""
CACHED = 64
"""Read models kept per kind (one per organisation and day) until the chain moves."""
T = TypeVar("T")


def at_this_height(ledger: PublicLedger, kind: str, key: str, make: Callable[[], T]) -> T:
    """``make()``, remembered until the chain's next block: pages read the same state
    again and again between blocks (every home, every form), so one pass serves them."""
    store: dict[str, tuple[int, Any]] = ledger.node.shared(f"cache.{kind}", dict)
    height = ledger.node.height()
    found = store.get(key)
    if found is not None and found[0] == height:
        value: T = found[1]
        return value
    value = make()
    if len(store) >= CACHED:
        store.clear()
    store[key] = (height, value)
    return value


@dataclass
class Worklist:
    """One organisation's supply work, as committed state shows it now."""

    org: str
    products: list[dict[str, Any]] = field(default_factory=list)
    """Products the organisation makes."""
    places: list[dict[str, Any]] = field(default_factory=list)
    """Its registered locations (GLN and name)."""
    destinations: list[dict[str, Any]] = field(default_factory=list)
    """Other members' registered locations, where it may ship."""
    lots: list[dict[str, Any]] = field(default_factory=list)
    """Its products' lots with their units counted by status."""
    holds: list[dict[str, Any]] = field(default_factory=list)
    """Its products' units in quarantine, waiting for a quality decision."""
    incoming: list[dict[str, Any]] = field(default_factory=list)
    """Shipments (packs or cases) on their way to one of its locations."""
    shippable: list[dict[str, Any]] = field(default_factory=list)
    """Packs and cases it holds, in stock and not packed in anything."""
    loose: list[dict[str, Any]] = field(default_factory=list)
    """Lots of which it holds packs in stock and not in a case: (gtin, lot, units)."""
    sellable: int = 0
    """Packs it holds that may be dispensed now."""
    recalled_held: list[dict[str, Any]] = field(default_factory=list)
    """Recalled packs it still holds in stock (to set aside, return or destroy)."""


def worklist(ledger: PublicLedger, org: str) -> Worklist:
    """The supply work of ``org`` now (one pass over the units per block)."""
    today = today_of(ledger.node)
    return at_this_height(ledger, "worklist", f"{org}/{today}", lambda: _worklist(ledger, org))


def _worklist(ledger: PublicLedger, org: str) -> Worklist:
    found = Worklist(org)
    names = {gln: rec for gln, rec in _locations(ledger)}
    found.places = [r for r in names.values() if r["org"] == org]
    found.destinations = sorted(
        (r | {"org_name": ledger.org_name(r["org"])} for r in names.values() if r["org"] != org),
        key=lambda r: (r["org_name"], r["name"]),
    )
    products = {k.removeprefix("product/"): v for k, v in ledger.range("product/", 1000)}
    found.products = [p for p in products.values() if p["maker"] == org]
    mine = {p["gtin"] for p in found.products}
    own_places = {r["gln"] for r in found.places}
    today = today_of(ledger.node)
    lots: dict[tuple[str, str], Counter[str]] = {}
    loose: dict[tuple[str, str], list[str]] = {}
    for _, record in ledger.range("unit/", MAX_UNITS):
        gtin = record.get("gtin")
        held = record.get("custodian") == org and record.get("status") == "active"
        if record.get("status") == "in_transit" and record.get("destination") in own_places:
            if record.get("parent") is None:
                found.incoming.append(_shown(ledger, record, names, products))
            continue
        if gtin in mine:
            stands = ledger.standing(record, today=today)
            lots.setdefault((gtin, record["lot"]), Counter())[stands["status"]] += 1
            if record.get("quarantined") and record.get("status") == "active":
                found.holds.append(_shown(ledger, record, names, products))
        if not held:
            continue
        if record.get("parent") is None:
            found.shippable.append(_shown(ledger, record, names, products))
            if gtin is not None:
                loose.setdefault((gtin, record["lot"]), []).append(record["unit"])
        if gtin is not None:
            stands = ledger.standing(record, today=today)
            if stands["status"] == "genuine":
                found.sellable += 1
            elif stands["status"] == "recalled":
                found.recalled_held.append(_shown(ledger, record, names, products) | stands)
    found.lots = [
        {
            "gtin": gtin,
            "lot": lot,
            "product": products.get(gtin, {}).get("name", gtin),
            "units": sum(counts.values()),
            "counts": dict(counts),
        }
        for (gtin, lot), counts in sorted(lots.items(), key=lambda item: item[0][1])
    ]
    found.loose = [
        {"gtin": g, "lot": lot, "product": products.get(g, {}).get("name", g), "units": units}
        for (g, lot), units in sorted(loose.items())
    ]
    return found


def case_label(row: dict[str, Any]) -> str:
    """A case of a worklist (:func:`_shown`) as its selects and lists name it: its SSCC
    as people read it and what it holds (``Case SSCC 1 6951234 000000001 2: 3 packs of
    Influenza vaccine, lot W7``)."""
    packs = f"{row['contains']} pack{'s' if row['contains'] != 1 else ''}"
    inside = f" of {row['product']}, lot {row['lot']}" if row["product"] and row["contains"] else ""
    return f"Case {row['sscc']}: {packs}{inside}"


def _locations(ledger: PublicLedger) -> list[tuple[str, dict[str, Any]]]:
    return [(k.removeprefix("location/"), v) for k, v in ledger.range("location/", 10_000)]


def _shown(
    ledger: PublicLedger,
    record: dict[str, Any],
    places: dict[str, dict[str, Any]],
    products: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """A unit as a worklist row: product and place names first, codes beside them."""
    kind = "case" if str(record["unit"]).startswith("00/") else "pack"
    children = record.get("children") or []
    inside = ledger.get(f"unit/{children[0]}") if kind == "case" and children else None
    product = products.get(str((inside or record).get("gtin")))
    return {
        "unit": record["unit"],
        "kind": kind,
        "sscc": ledger.sscc(str(record["unit"])) if kind == "case" else None,
        "product": None if product is None else product["name"],
        "lot": (inside or record).get("lot"),
        "serial": record.get("serial"),
        "expiry": record.get("expiry"),
        "contains": len(record.get("children") or []),
        "custodian": record.get("custodian"),
        "custodian_name": ledger.org_name(record.get("custodian")),
        "location": record.get("location"),
        "place_name": places.get(str(record.get("location")), {}).get("name"),
        "destination": record.get("destination"),
        "destination_name": places.get(str(record.get("destination")), {}).get("name"),
    }
