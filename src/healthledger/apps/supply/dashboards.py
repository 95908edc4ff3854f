"""What the supply console pages show: a unit's timeline and temperature chart (a
Vega-Lite specification, ``temperature_chart.py``), the recall dashboard. Plain data
for the templates."""

from __future__ import annotations

from collections import Counter
from typing import Any

from healthledger.appkit.readable import celsius, when
from healthledger.apps.supply.aggregation import anchor_key
from healthledger.apps.supply.temperature_chart import Reading, temperature_chart
from healthledger.apps.supply.verification import PublicLedger, outside, today_of

OP_NAMES: dict[str, str] = {
    "commission": "made (commissioned)",
    "pack": "packed into a case",
    "unpack": "unpacked",
    "ship": "shipped",
    "receive": "received",
    "observe": "checked in transit",
    "dispense": "dispensed",
    "destroy": "destroyed",
    "decommission": "decommissioned",
    "transform": "transformed",
    "associate": "sensor attached",
    "dissociate": "sensor removed",
}
"""What each step of a unit's trail (the contract's ``op``) is called on the pages and in
the chart; the templates read it as ``supply_op_names`` (``App.template_globals``)."""
SHOWN = 12
"""Units of a case or pallet its trace names (``trace.html`` lists as many)."""
INSIDE = 1_000
"""Cases (a case, the cases inside it ...) read to find the products a case holds."""
RECALL_BUCKETS = ("located", "returned", "destroyed", "missing")
"""How a recalled unit stands: held somewhere in the chain (located), back with its
maker (returned), destroyed or decommissioned, or out of reach (dispensed)."""


def unit_trace(ledger: PublicLedger, unit: str) -> dict[str, Any] | None:
    """A unit's record, how it stands (status, state, recall), its timeline with names
    and excursions against its storage range (a pack's product's; a case's from the
    packs it holds, :func:`held_storage`, with ``storage_note`` saying whose), the
    temperature chart of its journey, and the cases it names by their SSCC as people
    read them (``sscc``: unit id to name)."""
    record = ledger.get(f"unit/{unit}")
    if record is None:
        return None
    product = ledger.get(f"product/{record['gtin']}") if record.get("gtin") else None
    storage, storage_note = storage_of(ledger, record)
    trail = ledger.trail(unit)
    timeline = [
        {
            **entry,
            "when": when(entry.get("at")),
            "org_name": ledger.org_name(entry.get("org")),
            "place_name": ledger.place_name(entry.get("location")),
            "destination_name": ledger.place_name(entry.get("destination")),
            "excursion": storage is not None
            and outside(entry.get("temperature_range_dc"), storage),
            "temperature": (
                None
                if not entry.get("temperature_range_dc")
                else f"{entry['temperature_range_dc'][0] / 10:.1f} to "
                f"{entry['temperature_range_dc'][1] / 10:.1f} °C"
            ),
        }
        for entry in trail
    ]
    readings = [
        Reading(
            at_ms=int(e["at"]),
            low_dc=int(e["temperature_range_dc"][0]),
            high_dc=int(e["temperature_range_dc"][1]),
            what=OP_NAMES.get(str(e.get("op")), str(e.get("op") or "")),
            where=e["place_name"] or str(e.get("location") or ""),
        )
        for e in timeline
        if e.get("temperature_range_dc") and isinstance(e.get("at"), int)
    ]
    named = [record["unit"], record.get("parent"), *(record.get("children") or [])[:SHOWN]]
    named += [e.get("via") for e in trail]
    return {
        "unit": record,
        "sscc": {u: ledger.sscc(u) for u in named if isinstance(u, str) and u.startswith("00/")},
        **ledger.standing(record, today=today_of(ledger.node)),
        "product": product,
        "storage": storage,
        "storage_note": storage_note,
        "maker_name": ledger.org_name(record.get("maker")),
        "custodian_name": ledger.org_name(record.get("custodian")),
        "place_name": ledger.place_name(record.get("location")),
        "destination_name": ledger.place_name(record.get("destination")),
        "timeline": timeline,
        "readings": len(readings),
        "chart": temperature_chart(readings, storage, range_note=storage_note),
    }


def storage_of(
    ledger: PublicLedger, record: dict[str, Any]
) -> tuple[dict[str, int] | None, str | None]:
    """A unit's storage range (``temp_min_dc``, ``temp_max_dc``) and, where it is not
    a pack's own product's, a sentence saying whose it is or why there is none: the one
    answer of the trace page and the unit history API."""
    product = ledger.get(f"product/{record['gtin']}") if record.get("gtin") else None
    if product is not None:
        return {k: int(product[k]) for k in ("temp_min_dc", "temp_max_dc")}, None
    return held_storage(ledger, record)


def held_storage(
    ledger: PublicLedger, record: dict[str, Any]
) -> tuple[dict[str, int] | None, str | None]:
    """The storage range of the packs a case or pallet holds, or held on its journey if
    it has been unpacked (it has no product of its own), and a sentence saying whose it
    is: its products' range where they agree; where they differ, the narrowest range
    within every one (the highest low, the lowest high) and that it is so; None and why
    where no range keeps them all or none is known. A pack gives ``(None, None)``."""
    if record.get("gtin"):
        return None, None
    packs, now = _packed(ledger, record)
    holds = "holds" if now else "held"
    products = [p for p in (ledger.get(f"product/{g}") for g in sorted(packs)) if p]
    if not products:  # the contract packs only registered products' packs
        return None, f"It {holds} no pack of a registered product: no storage range is known."
    ranges = sorted({(int(p["temp_min_dc"]), int(p["temp_max_dc"])) for p in products})
    each = "; ".join(
        f"{p['name']}: {celsius(p['temp_min_dc'])} to {celsius(p['temp_max_dc'])}" for p in products
    )
    if len(ranges) == 1:
        names = ", ".join(str(p["name"]) for p in products)
        low, high = ranges[0]
        return {"temp_min_dc": low, "temp_max_dc": high}, (
            f"The storage range of the packs it {holds}: {names}."
        )
    low, high = max(r[0] for r in ranges), min(r[1] for r in ranges)
    if low > high:
        return None, (
            f"The products it {holds} have no storage range in common ({each}): no one"
            f" temperature keeps them all."
        )
    return {"temp_min_dc": low, "temp_max_dc": high}, (
        f"The products it {holds} differ ({each}): this is the narrowest range, within"
        f" every one of them."
    )


def _packed(ledger: PublicLedger, record: dict[str, Any]) -> tuple[Counter[str], bool]:
    """Packs by GTIN that a case holds, through the cases inside it, or (unpacked on
    arrival) held: its children now and the units its trail's pack events put in it;
    and whether it holds any now."""
    now = bool(record.get("children"))
    packs: Counter[str] = Counter()
    todo, seen = [str(record["unit"])], set[str]()
    while todo and len(seen) < INSIDE:
        case = todo.pop()
        if case in seen:
            continue
        seen.add(case)
        inside = set((ledger.get(f"unit/{case}") or {}).get("children") or [])
        for entry in ledger.trail(case):
            if entry.get("op") == "pack" and entry.get("accepted"):
                anchor = ledger.get(anchor_key(str(entry["event_hash"]))) or {}
                if anchor.get("parent") == case:
                    inside.update(anchor.get("units") or [])
        for unit in map(str, inside):
            if unit.startswith("00/"):
                todo.append(unit)
            elif unit.startswith("01/"):
                packs[unit.split("/")[1]] += 1  # 01/<GTIN>/21/<serial>
    return packs, now


def _recall_bucket(record: dict[str, Any]) -> str:
    status = record.get("status")
    if status in ("destroyed", "decommissioned"):
        return "destroyed"
    if status in ("dispensed", "administered", "consumed"):
        return "missing"
    if record.get("custodian") == record.get("maker") and status == "active":
        return "returned"
    return "located"


def recall_dashboard(ledger: PublicLedger) -> list[dict[str, Any]]:
    """Every recall with its units counted as located, returned, destroyed or missing."""
    recalls = []
    for key, recall in ledger.range("recall/"):
        gtin, lot = recall["gtin"], recall["lot"]
        if recall.get("units"):
            units = [ledger.get(f"unit/{u}") for u in recall["units"]]
        else:
            units = [r for _, r in ledger.range(f"unit/01/{gtin}/21/") if r.get("lot") == lot]
        records = [u for u in units if u is not None]
        counts = Counter(_recall_bucket(r) for r in records)
        product = ledger.get(f"product/{gtin}")
        recalls.append(
            {
                "id": key.removeprefix("recall/"),
                "gtin": gtin,
                "lot": lot,
                "product": None if product is None else product["name"],
                "reason": recall["reason"],
                "by": recall["by"],
                "by_name": ledger.org_name(str(recall["by"]).split("/", 1)[0]),
                "at": (ledger.recorded_at(key) or (None, None))[0],
                "total": len(records),
                "counts": {b: counts.get(b, 0) for b in RECALL_BUCKETS},
                "units": [
                    {
                        "unit": r["unit"],
                        "bucket": _recall_bucket(r),
                        "custodian": r.get("custodian"),
                        "location": r.get("location"),
                        "status": r.get("status"),
                    }
                    for r in records
                ],
            }
        )
    return recalls
