"""Association events in the ``supply`` contract: sensors and assets linked to a parent.

A temperature logger or another asset (GIAI, GRAI) is associated with a unit the
caller holds (a pack, case or pallet) or with an asset of the caller's own (a
refrigerated truck); a sensor belongs to one parent at a time and only the
organisation that associated it may dissociate it. Units go into containers by
packing, not by association: associating a unit as a child is refused.
"""

from __future__ import annotations

from typing import Any

from healthledger.apps.supply.aggregation import MasterData, require_custody, unit_key
from healthledger.apps.supply.capture_step import ASSET_ID, UNIT_ID, CaptureStep
from healthledger.contracts.context import Context
from healthledger.contracts.errors import AccessDenied, Rejected

MAX_ASSOCIATED = 200
"""Sensors and assets one parent may carry at a time."""


def association_key(parent: str) -> str:
    """The state key of what is associated with ``parent``."""
    return f"association/{parent}"


def associated_key(child: str) -> str:
    """The state key saying which parent a sensor or asset is associated with."""
    return f"associated/{child}"


def associate(ctx: Context, step: CaptureStep, master: MasterData) -> None:
    """Associate the sensors and assets ``step.units`` with ``step.parent``."""
    parent = _parent(ctx, step)
    if not step.units:
        raise Rejected("an association names the sensors or assets it links")
    current = ctx.get(association_key(parent)) or {"parent": parent, "children": []}
    children = list(current["children"])
    for child in step.units:
        if not ASSET_ID.match(child):
            raise Rejected(
                f"{child}: only sensors and assets (GIAI, GRAI) are associated; pack units instead"
            )
        linked = ctx.get(associated_key(child))
        if linked is not None and linked["parent"] != parent:
            raise Rejected(f"{child} is associated with {linked['parent']}: dissociate it first")
        if child not in children:
            children.append(child)
        ctx.put(
            associated_key(child),
            {"child": child, "parent": parent, "org": ctx.caller.org, "since": step.event_hash},
        )
    if len(children) > MAX_ASSOCIATED:
        raise Rejected(f"{parent} would carry more than {MAX_ASSOCIATED} sensors and assets")
    ctx.put(
        association_key(parent),
        {"parent": parent, "org": ctx.caller.org, "children": children, "at": ctx.timestamp},
    )


def dissociate(ctx: Context, step: CaptureStep, master: MasterData) -> None:
    """Dissociate ``step.units`` (none named: all of them) from ``step.parent``."""
    parent = _parent(ctx, step)
    current = ctx.get(association_key(parent))
    children = list(current["children"]) if current else []
    for child in step.units or list(children):
        if child not in children:
            raise Rejected(f"{child} is not associated with {parent}")
        children.remove(child)
        ctx.delete(associated_key(child))
    if current is not None:
        ctx.put(association_key(parent), {**current, "children": children, "at": ctx.timestamp})


def _parent(ctx: Context, step: CaptureStep) -> str:
    """The parent, checked: a unit the caller holds, or an asset the caller's own."""
    parent = step.parent
    if parent is None:
        raise Rejected("an association needs a parent")
    if UNIT_ID.match(parent):
        record: Any = ctx.get(unit_key(parent))
        if record is None:
            raise Rejected(f"{parent} is not a commissioned unit")
        require_custody(ctx, dict(record), "associate sensors with")
    elif ASSET_ID.match(parent):
        current = ctx.get(association_key(parent))
        if current is not None and current["org"] != ctx.caller.org:
            raise AccessDenied(f"{parent} is an asset of {current['org']}, not {ctx.caller.org}")
    else:
        raise Rejected(f"{parent!r} is neither a unit nor an asset id")
    return parent
