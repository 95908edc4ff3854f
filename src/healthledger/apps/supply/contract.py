"""The ``supply`` contract: master data, the serial lifecycle and custody, event anchors, alerts.

Every captured EPCIS event is anchored by its CBV 2.0 event hash
(``anchor/<hex>``) together with the custody effect it had. The full event
document stays off chain (in a read model); anything holding it can recompute
the hash and compare it with the anchor.

Two kinds of refusal:

* a caller doing what its organisation may not (commissioning another maker's
  GTIN, shipping what it does not hold, receiving a shipment meant for someone
  else, an illegal lifecycle transition) refuses the whole transaction
  (``Rejected``, nothing stored);
* a counterfeit or diversion signal (an unknown serial, a serial dispensed
  twice, one unit seen in two places, an expired, recalled or quarantined unit
  dispensed) is itself evidence: the transaction commits, the event is anchored
  as refused with its reason, the unit is left unchanged, and an alert record
  and a ``supply_alert`` event tell the maker and the regulator.

Transformations (inputs consumed, outputs commissioned by their maker) and
associations of sensors and assets with a parent have their rules in
``transformation.py`` and ``association.py``. A unit's trail indexes the anchors
of the events that reached it, each with the container it came through (``via``).

No PHI: an administration records only a pseudonymous person id.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Literal

from healthledger.apps.supply.aggregation import (
    MasterData,
    anchor_key,
    container_record,
    depth_below,
    height_above,
    is_recalled,
    new_unit,
    require_custody,
    require_own_location,
    require_unit,
    trail_entry,
    trail_key,
    unit_key,
    with_descendants,
)
from healthledger.apps.supply.alerts import quarantine_excursions, record_alert
from healthledger.apps.supply.association import associate, dissociate
from healthledger.apps.supply.capture_step import (
    ASSET_ID,
    EVENT_HASH,
    GLN,
    MAKER_KINDS,
    MAKER_ROLES,
    MAX_DEPTH,
    PLACE_KINDS,
    REGULATOR_ROLES,
    UNIT_ID,
    CaptureStep,
    Operation,
    day_of,
    valid_gs1_key,
)
from healthledger.apps.supply.transformation import transform
from healthledger.contracts.context import Context
from healthledger.contracts.contract import Contract, query, transaction
from healthledger.contracts.errors import AccessDenied, Rejected
from healthledger.contracts.system.prefixes import company_digits, prefix_of

__all__ = ["CaptureStep", "Operation", "SupplyContract", "valid_gs1_key"]


def _require_own_gs1_key(ctx: Context, digits: str, what: str) -> None:
    """AccessDenied unless ``digits`` (a GS1 key from its company prefix on) lie inside a
    GS1 company prefix that the consortium records for the caller's organisation: only
    a brand owner registers its products, only an owner its places."""
    record = ctx.organisation(ctx.caller.org) or {}
    held = record.get("gs1_prefixes", [])
    if prefix_of(digits, held) is None:
        owned = ", ".join(held) if held else "none"
        raise AccessDenied(
            f"{what} lies outside the GS1 company prefixes of {ctx.caller.org} ({owned})"
        )


class SupplyContract(Contract):
    """Products, locations, units and their custody; anchors of every captured event."""

    name = "supply"
    code_modules = (
        "healthledger.apps.supply.aggregation",
        "healthledger.apps.supply.alerts",
        "healthledger.apps.supply.association",
        "healthledger.apps.supply.capture_step",
        "healthledger.apps.supply.digital_link",
        "healthledger.apps.supply.transformation",
    )
    policy = "OR('*.peer')"

    # --- master data ---------------------------------------------------------------

    @transaction(
        roles=MAKER_ROLES,
        kinds=MAKER_KINDS,
        relation="the GTIN lies inside a GS1 company prefix of the caller's organisation",
    )
    def register_product(
        self,
        ctx: Context,
        *,
        gtin: str,
        name: str,
        dosage_form: str,
        temp_min_dc: int,
        temp_max_dc: int,
        shelf_life_days: int,
    ) -> dict[str, Any]:
        """Register a GTIN; the caller's organisation becomes its maker (temperatures in
        tenths of a degree Celsius)."""
        if not valid_gs1_key(gtin, 14):
            raise Rejected(f"GTIN {gtin!r} is not 14 digits with a valid check digit")
        _require_own_gs1_key(ctx, company_digits(gtin), f"GTIN {gtin}")
        if not name.strip() or not dosage_form.strip():
            raise Rejected("name and dosage form are required")
        if temp_min_dc > temp_max_dc:
            raise Rejected("storage temperature range is empty (min > max)")
        if not 0 < shelf_life_days <= 36500:
            raise Rejected("shelf life must be 1..36500 days")
        if ctx.get(f"product/{gtin}") is not None:
            raise Rejected(f"GTIN {gtin} is already registered")
        product = {
            "gtin": gtin,
            "name": name,
            "dosage_form": dosage_form,
            "temp_min_dc": temp_min_dc,
            "temp_max_dc": temp_max_dc,
            "shelf_life_days": shelf_life_days,
            "maker": ctx.caller.org,
            "registered_by": ctx.caller.id,
            "at": ctx.timestamp,
        }
        ctx.put(f"product/{gtin}", product)
        ctx.emit("product_registered", {"gtin": gtin, "maker": ctx.caller.org})
        return product

    @transaction(
        kinds=PLACE_KINDS,
        relation="the GLN lies inside a GS1 company prefix of the caller's organisation",
    )
    def register_location(self, ctx: Context, *, gln: str, name: str) -> dict[str, Any]:
        """Bind a GLN to the caller's organisation."""
        if not valid_gs1_key(gln, 13):
            raise Rejected(f"GLN {gln!r} is not 13 digits with a valid check digit")
        _require_own_gs1_key(ctx, gln, f"GLN {gln}")
        existing = ctx.get(f"location/{gln}")
        if existing is not None:
            raise Rejected(f"GLN {gln} is already bound to {existing['org']}")
        location = {"gln": gln, "name": name, "org": ctx.caller.org, "at": ctx.timestamp}
        ctx.put(f"location/{gln}", location)
        return location

    # --- capture -----------------------------------------------------------------

    @transaction()
    def capture(self, ctx: Context, *, steps: list[CaptureStep]) -> dict[str, Any]:
        """Anchor a document's events and apply their custody effects, all or nothing."""
        if not 1 <= len(steps) <= 1000:
            raise Rejected("a capture holds 1 to 1000 events")
        master = MasterData(ctx)
        outcomes = [self._apply(ctx, step, index, master) for index, step in enumerate(steps)]
        # One contract event per document, not per event: subscribers learn what to re-read.
        ctx.emit(
            "supply_captured",
            {"events": len(steps), "ops": dict(Counter(step.op for step in steps))},
        )
        return {
            "anchored": [o["event_hash"] for o in outcomes],
            "refused": [o for o in outcomes if not o["accepted"]],
            "alerts": sum(o["alerts"] for o in outcomes),
        }

    @transaction()
    def administer(
        self, ctx: Context, *, event_hash: str, unit: str, person: str, site: str
    ) -> dict[str, Any]:
        """A vaccination: dispense ``unit`` at ``site`` to a pseudonymous ``person``."""
        if not re.fullmatch(r"[A-Za-z0-9_-]{16,128}", person):
            raise Rejected("person must be a pseudonymous id (16-128 of [A-Za-z0-9_-]), no PHI")
        step = CaptureStep(event_hash=event_hash, op="dispense", units=[unit], location=site)
        outcome = self._apply(ctx, step, 0, MasterData(ctx))
        if outcome["accepted"]:
            record = ctx.get(unit_key(unit)) or {}
            record["status"] = "administered"
            ctx.put(unit_key(unit), record)
            ctx.emit(
                "vaccine_administered",
                {
                    "gtin": record.get("gtin"),
                    "lot": record.get("lot"),
                    "serial": record.get("serial"),
                    "person": person,
                    "site": site,
                    "site_org": ctx.caller.org,
                    "event_hash": event_hash,
                    "at": ctx.timestamp,
                },
            )
        return outcome

    @transaction()
    def recall(
        self, ctx: Context, *, gtin: str, lot: str, reason: str, units: list[str] | None = None
    ) -> dict[str, Any]:
        """Recall a lot (or only ``units`` of it): by the maker's admin/quality or a regulator."""
        product = ctx.get(f"product/{gtin}")
        if product is None:
            raise Rejected(f"GTIN {gtin} is not registered")
        is_maker = ctx.caller.org == product["maker"] and ctx.caller.role in MAKER_ROLES
        if not is_maker and ctx.caller.role not in REGULATOR_ROLES:
            raise AccessDenied("only the maker's admin/quality or a regulator may recall")
        if not reason.strip():
            raise Rejected("a recall needs a reason")
        recall_id = f"{gtin}/{lot}/{ctx.tx_id[:16]}"
        ctx.put(
            f"recall/{recall_id}",
            {"gtin": gtin, "lot": lot, "units": units, "reason": reason, "by": ctx.caller.id},
        )
        if units is None:
            ctx.put(f"recalled_lot/{gtin}/{lot}", {"recall": recall_id, "reason": reason})
        else:
            for unit in units:
                record = self._unit(ctx, unit)
                if record["gtin"] != gtin or record["lot"] != lot:
                    raise Rejected(f"{unit} is not of GTIN {gtin} lot {lot}")
                record["recalled"] = recall_id
                ctx.put(unit_key(unit), record)
        ctx.emit("supply_recall", {"recall": recall_id, "gtin": gtin, "lot": lot})
        return {"recall": recall_id}

    # --- queries -----------------------------------------------------------------

    @query()
    def product(self, ctx: Context, *, gtin: str) -> Any:
        """A product, or None."""
        return ctx.get(f"product/{gtin}")

    @query()
    def unit(self, ctx: Context, *, unit: str) -> Any:
        """A unit's current record, or None."""
        return ctx.get(unit_key(unit))

    @query()
    def trail(self, ctx: Context, *, unit: str) -> list[Any]:
        """The events that touched a unit (itself or through a parent), oldest first."""
        prefix = trail_key(unit)
        return [
            trail_entry(v, ctx.get(anchor_key(v["event_hash"])))
            for _, v in ctx.range(prefix, prefix + "~")
        ]

    @query()
    def anchor(self, ctx: Context, *, event_hash: str) -> Any:
        """The on-chain anchor of an event hash, or None."""
        return ctx.get(anchor_key(event_hash))

    @query()
    def alerts(self, ctx: Context) -> list[Any]:
        """Alerts the caller may see: the regulator all, a maker its products', others theirs."""
        everything = [v for _, v in ctx.range("alert/", "alert/~")]
        if ctx.caller.role in REGULATOR_ROLES:
            return everything
        return [a for a in everything if ctx.caller.org in (a["maker"], a["org"])]

    # --- the lifecycle -----------------------------------------------------------

    def _apply(
        self, ctx: Context, step: CaptureStep, index: int, master: MasterData
    ) -> dict[str, Any]:
        if not EVENT_HASH.match(step.event_hash):
            raise Rejected(f"event {index}: {step.event_hash!r} is not a CBV 2.0 event hash")
        if ctx.get(anchor_key(step.event_hash)) is not None:
            raise Rejected(f"event {index}: {step.event_hash} is already anchored")
        linking = step.op in ("associate", "dissociate")
        for unit in [*step.units, *step.outputs, *([step.parent] if step.parent else [])]:
            if not (UNIT_ID.match(unit) or (linking and ASSET_ID.match(unit))):
                raise Rejected(f"event {index}: {unit!r} is not a GTIN+serial, SSCC or asset id")
        for gln in (step.location, step.destination):
            if gln is not None and not GLN.match(gln):
                raise Rejected(f"event {index}: {gln!r} is not a GLN")
        # An unpack's children are gone afterwards; commissioned units do not exist before.
        before = {} if step.op == "commission" else self._touched(ctx, step)
        signal = getattr(self, f"_{step.op}")(ctx, step, master)
        accepted = signal is None
        alerts = 0
        if signal is not None:
            kind, unit, detail = signal
            record_alert(ctx, kind, unit, step.event_hash, detail)
            alerts = 1
        touched = (
            before | {u: v for u, v in self._touched(ctx, step).items() if u not in before}
            if accepted
            else dict.fromkeys(step.units)
        )
        anchor = {
            "event_hash": step.event_hash,
            "op": step.op,
            "units": step.units,
            "parent": step.parent,
            **({"outputs": step.outputs} if step.outputs else {}),
            "location": step.location,
            "destination": step.destination,
            "org": ctx.caller.org,
            "by": ctx.caller.id,
            "tx_id": ctx.tx_id,
            "at": ctx.timestamp,
            "accepted": accepted,
            "reason": None if signal is None else signal[2],
            "temperature_range_dc": (
                [min(step.temperatures_dc), max(step.temperatures_dc)]
                if step.temperatures_dc
                else None
            ),
        }
        if accepted and step.temperatures_dc:
            alerts += quarantine_excursions(ctx, step, list(touched), master)
        ctx.put(anchor_key(step.event_hash), anchor)
        for unit, via in touched.items():
            record = ctx.get(unit_key(unit))
            if record is None:
                continue
            if record.get("last_event") != step.event_hash:  # not made by this very event
                record["seq"] = record.get("seq", 0) + 1
                record["last_event"] = step.event_hash
                record["last_tx"] = ctx.tx_id
                ctx.put(unit_key(unit), record)
            # The facts of the event are in its anchor: the trail only indexes it by unit.
            trail = {"event_hash": step.event_hash, "via": via}
            ctx.put(trail_key(unit, record["seq"]), trail)
        return {
            "event_hash": step.event_hash,
            "accepted": accepted,
            "reason": anchor["reason"],
            "alerts": alerts,
        }

    def _commission(self, ctx: Context, step: CaptureStep, master: MasterData) -> None:
        if not step.units:
            raise Rejected("commission names no units")
        if step.lot is None or not step.lot.strip():
            raise Rejected("commission needs a lot")
        require_own_location(ctx, master, step.location)
        for unit in step.units:
            record = new_unit(
                ctx, step, master, unit, not_a_unit="only GTIN+serial units are commissioned"
            )
            ctx.put(unit_key(unit), record)

    def _pack(self, ctx: Context, step: CaptureStep, master: MasterData) -> None:
        if step.parent is None or not step.units:
            raise Rejected("packing needs a parent and children")
        parent = ctx.get(unit_key(step.parent))
        if parent is None:
            if not step.parent.startswith("00/"):
                raise Rejected(f"{step.parent}: an unknown parent must be an SSCC")
            parent = container_record(step.parent, ctx.caller.org, step.location)
        self._require_custody(ctx, parent, "pack into")
        for unit in step.units:
            child = self._unit(ctx, unit)
            self._require_custody(ctx, child, "pack")
            if child["parent"] not in (None, step.parent):
                raise Rejected(f"{unit} is already packed in {child['parent']}")
            nested = depth_below(ctx, child) + height_above(ctx, step.parent)
            if unit == step.parent or nested >= MAX_DEPTH:
                raise Rejected(f"{unit} cannot be packed into {step.parent}")
            child["parent"] = step.parent
            ctx.put(unit_key(unit), child)
            if unit not in parent["children"]:
                parent["children"].append(unit)
        ctx.put(unit_key(step.parent), parent)

    def _unpack(self, ctx: Context, step: CaptureStep, master: MasterData) -> None:
        if step.parent is None:
            raise Rejected("unpacking needs a parent")
        parent = self._unit(ctx, step.parent)
        self._require_custody(ctx, parent, "unpack")
        for unit in step.units or list(parent["children"]):
            if unit not in parent["children"]:
                raise Rejected(f"{unit} is not in {step.parent}")
            child = self._unit(ctx, unit)
            child["parent"] = None
            ctx.put(unit_key(unit), child)
            parent["children"].remove(unit)
        ctx.put(unit_key(step.parent), parent)

    def _ship(self, ctx: Context, step: CaptureStep, master: MasterData) -> None:
        if step.destination is None:
            raise Rejected("a shipment needs a destination GLN")
        if master.location(step.destination) is None:
            raise Rejected(f"destination GLN {step.destination} is not registered")
        for unit in step.units:
            record = self._unit(ctx, unit)
            self._require_custody(ctx, record, "ship")
            if record["parent"] is not None:
                raise Rejected(f"{unit} is packed in {record['parent']}: ship the parent")
            for member in with_descendants(ctx, unit):
                item = self._unit(ctx, member)
                item["status"] = "in_transit"
                item["destination"] = step.destination
                ctx.put(unit_key(member), item)

    def _receive(self, ctx: Context, step: CaptureStep, master: MasterData) -> None:
        for unit in step.units:
            record = self._unit(ctx, unit)
            if record["status"] != "in_transit":
                raise Rejected(f"{unit} is not in transit (status {record['status']})")
            bound_for = master.location(record["destination"])
            if bound_for is None or bound_for["org"] != ctx.caller.org:
                raise AccessDenied(
                    f"{unit} is bound for GLN {record['destination']}, not for {ctx.caller.org}"
                )
            for member in with_descendants(ctx, unit):
                item = self._unit(ctx, member)
                item.update(
                    status="active",
                    custodian=ctx.caller.org,
                    location=record["destination"],
                    destination=None,
                )
                ctx.put(unit_key(member), item)

    def _observe(
        self, ctx: Context, step: CaptureStep, master: MasterData
    ) -> tuple[str, str, str] | None:
        for unit in step.units:
            record = ctx.get(unit_key(unit))
            if record is None:
                return ("unknown_serial", unit, f"{unit} was never commissioned")
            if record["custodian"] != ctx.caller.org and record["status"] != "in_transit":
                return (
                    "unit_in_two_places",
                    unit,
                    f"{unit} is held by {record['custodian']} but seen by {ctx.caller.org}",
                )
        return None

    def _dispense(
        self, ctx: Context, step: CaptureStep, master: MasterData
    ) -> tuple[str, str, str] | None:
        if len(step.units) != 1:
            raise Rejected("dispense one unit at a time")
        unit = step.units[0]
        record = ctx.get(unit_key(unit))
        if record is None:
            return ("unknown_serial", unit, f"{unit} was never commissioned")
        if record["status"] in ("dispensed", "administered"):
            return ("dispensed_twice", unit, f"{unit} was already {record['status']}")
        if record["status"] in ("decommissioned", "destroyed", "consumed"):
            return ("dispensed_twice", unit, f"{unit} was {record['status']}")
        if record["custodian"] != ctx.caller.org or record["status"] == "in_transit":
            return (
                "unit_in_two_places",
                unit,
                f"{unit} is held by {record['custodian']} ({record['status']}), "
                f"dispensed by {ctx.caller.org}",
            )
        if self._recalled(ctx, record):
            return ("recalled_dispensed", unit, f"{unit} is recalled")
        if record["quarantined"]:
            return ("quarantined_dispensed", unit, f"{unit} is quarantined")
        if record["expiry"] < day_of(ctx.timestamp).isoformat():
            return ("expired_sold", unit, f"{unit} expired on {record['expiry']}")
        record["status"] = "dispensed"
        record["location"] = step.location or record["location"]
        ctx.put(unit_key(unit), record)
        return None

    def _transform(self, ctx: Context, step: CaptureStep, master: MasterData) -> None:
        transform(ctx, step, master)

    def _associate(self, ctx: Context, step: CaptureStep, master: MasterData) -> None:
        associate(ctx, step, master)

    def _dissociate(self, ctx: Context, step: CaptureStep, master: MasterData) -> None:
        dissociate(ctx, step, master)

    def _decommission(self, ctx: Context, step: CaptureStep, master: MasterData) -> None:
        self._retire(ctx, step, "decommissioned", "decommission")

    def _destroy(self, ctx: Context, step: CaptureStep, master: MasterData) -> None:
        self._retire(ctx, step, "destroyed", "destroy")

    def _retire(self, ctx: Context, step: CaptureStep, status: str, verb: str) -> None:
        for unit in step.units:
            record = self._unit(ctx, unit)
            self._require_custody(ctx, record, verb)
            for member in with_descendants(ctx, unit):
                item = self._unit(ctx, member)
                item["status"] = status
                ctx.put(unit_key(member), item)

    @transaction(roles=MAKER_ROLES)
    def decide_quarantine(
        self, ctx: Context, *, unit: str, decision: Literal["release", "destroy"], reason: str
    ) -> dict[str, Any]:
        """The maker's quality decision on a quarantined unit: release it or destroy it."""
        record = self._unit(ctx, unit)
        if record["maker"] != ctx.caller.org:
            raise AccessDenied(f"only {record['maker']}, the maker, decides on {unit}")
        if not record["quarantined"]:
            raise Rejected(f"{unit} is not quarantined")
        if not reason.strip():
            raise Rejected("a quarantine decision needs a reason")
        record["quarantined"] = False
        if decision == "destroy":
            record["status"] = "destroyed"
        ctx.put(unit_key(unit), record)
        decided = {
            "unit": unit,
            "decision": decision,
            "reason": reason,
            "by": ctx.caller.id,
            "tx_id": ctx.tx_id,
            "at": ctx.timestamp,
        }
        ctx.put(f"decision/{unit}/{ctx.tx_id[:16]}", decided)
        ctx.emit("quarantine_decided", decided)
        return decided

    # --- helpers -----------------------------------------------------------------

    def _unit(self, ctx: Context, unit: str) -> dict[str, Any]:
        return require_unit(ctx, unit)

    def _require_custody(self, ctx: Context, record: dict[str, Any], verb: str) -> None:
        require_custody(ctx, record, verb)

    def _recalled(self, ctx: Context, record: dict[str, Any]) -> bool:
        return is_recalled(ctx, record)

    def _touched(self, ctx: Context, step: CaptureStep) -> dict[str, str | None]:
        """Every unit the event reaches, with the container named in the event through
        which it reached it (None: the unit is named in the event itself)."""
        named = [*step.units, *step.outputs, *([step.parent] if step.parent else [])]
        touched: dict[str, str | None] = {}
        for unit in named:
            for member in with_descendants(ctx, unit):
                touched.setdefault(member, unit if member != unit else None)
        return touched | dict.fromkeys(named)
