"""Alerts of the ``supply`` contract, and the cold-chain rule that raises most of them.

An alert is a state record (``alert/<time>/<event>/<kind>/<maker>``) and a
``supply_alert`` contract event: the maker, the regulator and the organisation
whose event raised it see it.
"""

from __future__ import annotations

from healthledger.apps.supply.aggregation import MasterData, maker_of, unit_key
from healthledger.apps.supply.capture_step import CaptureStep
from healthledger.contracts.context import Context


def record_alert(
    ctx: Context,
    kind: str,
    unit: str,
    event_hash: str,
    detail: str,
    *,
    maker: str | None = None,
    units: list[str] | None = None,
) -> None:
    """Record an alert of ``kind`` about ``unit`` (and ``units``), raised by ``event_hash``."""
    if maker is None:
        record = ctx.get(unit_key(unit))
        maker = record["maker"] if record else maker_of(ctx, unit)
    alert = {
        "kind": kind,
        "unit": unit,
        "units": units or [unit],
        "event_hash": event_hash,
        "org": ctx.caller.org,
        "maker": maker,
        "detail": detail,
        "tx_id": ctx.tx_id,
        "at": ctx.timestamp,
    }
    ctx.put(f"alert/{ctx.timestamp:015d}/{event_hash[14:30]}/{kind}/{maker}", alert)
    ctx.emit("supply_alert", alert)


def quarantine_excursions(
    ctx: Context, step: CaptureStep, touched: list[str], master: MasterData
) -> int:
    """Quarantine every unit whose product's storage range a reading of ``step`` left, and
    alert each maker concerned; returns the number of alerts."""
    low, high = min(step.temperatures_dc), max(step.temperatures_dc)
    quarantined: dict[str | None, list[str]] = {}
    for unit in touched:
        record = ctx.get(unit_key(unit))
        if record is None or record["gtin"] is None or record["quarantined"]:
            continue
        product = master.product(record["gtin"])
        if product is None or product["temp_min_dc"] <= low <= high <= product["temp_max_dc"]:
            continue
        record["quarantined"] = True
        ctx.put(unit_key(unit), record)
        quarantined.setdefault(record["maker"], []).append(unit)
    for maker, units in quarantined.items():
        record_alert(
            ctx,
            "temperature_excursion",
            units[0],
            step.event_hash,
            f"{len(units)} unit(s) quarantined: readings {low}..{high} (0.1 C) "
            "outside the storage range",
            maker=maker,
            units=units,
        )
    return len(quarantined)
