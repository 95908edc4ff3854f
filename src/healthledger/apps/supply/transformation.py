"""Transformation events in the ``supply`` contract: inputs consumed, outputs commissioned.

A transformation (repackaging a bulk pack into unit doses, kitting, compounding)
is done by the organisation that holds every input: the inputs become
``consumed`` and leave the supply chain, and the outputs are new units of the
transformer's own registered GTINs, commissioned at one of its locations with a
lot, each recording what it was made from. Anything else is refused with the
reason; nothing is half done.
"""

from __future__ import annotations

from typing import Any

from healthledger.apps.supply.aggregation import (
    MasterData,
    is_recalled,
    new_unit,
    require_custody,
    require_own_location,
    require_unit,
    unit_key,
)
from healthledger.apps.supply.capture_step import DATE, CaptureStep
from healthledger.contracts.context import Context
from healthledger.contracts.errors import Rejected


def transform(ctx: Context, step: CaptureStep, master: MasterData) -> None:
    """Consume ``step.units`` and commission ``step.outputs`` from them."""
    if not step.units or not step.outputs:
        raise Rejected("a transformation names its input and output units in one event")
    if step.lot is None or not step.lot.strip():
        raise Rejected("a transformation's outputs need a lot (ilmd lotNumber)")
    if step.expiry is not None and not DATE.match(step.expiry):
        raise Rejected(f"expiry {step.expiry!r} is not YYYY-MM-DD")
    if set(step.units) & set(step.outputs):
        raise Rejected("a unit cannot be both an input and an output of a transformation")
    require_own_location(ctx, master, step.location)
    inputs = [_consumable(ctx, unit) for unit in step.units]
    for output in step.outputs:
        ctx.put(unit_key(output), _output(ctx, step, master, output))
    for record in inputs:
        record["status"] = "consumed"
        record["consumed_into"] = step.outputs[:20]
        record["transformation"] = step.event_hash
        ctx.put(unit_key(record["unit"]), record)


def _consumable(ctx: Context, unit: str) -> dict[str, Any]:
    record = require_unit(ctx, unit)
    require_custody(ctx, record, "transform")
    if record["parent"] is not None:
        raise Rejected(f"{unit} is packed in {record['parent']}: unpack it first")
    if record.get("children"):
        raise Rejected(f"{unit} contains other units: unpack them first")
    if record.get("gtin") is None:
        raise Rejected(f"{unit} is a logistic unit: only products are transformed")
    if is_recalled(ctx, record):
        raise Rejected(f"{unit} is recalled: it cannot be transformed")
    if record["quarantined"]:
        raise Rejected(f"{unit} is quarantined: it cannot be transformed")
    return record


def _output(ctx: Context, step: CaptureStep, master: MasterData, output: str) -> dict[str, Any]:
    record = new_unit(
        ctx, step, master, output, not_a_unit="a transformation's outputs are GTIN+serial units"
    )
    record["derived_from"] = step.units[:20]
    record["transformation"] = step.event_hash
    return record
