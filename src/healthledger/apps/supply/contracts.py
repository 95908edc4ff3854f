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

No PHI: an administration records only a pseudonymous person id.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

from healthledger.apps.supply.aggregation import (
    anchor_key,
    container_record,
    depth_below,
    height_above,
    maker_of,
    unit_key,
    with_descendants,
)
from healthledger.apps.supply.capture_step import (
    DATE,
    EVENT_HASH,
    GLN,
    MAKER_ROLES,
    MAX_DEPTH,
    REGULATOR_ROLES,
    UNIT_ID,
    CaptureStep,
    Operation,
    day_of,
    valid_gs1_key,
)
from healthledger.contracts.context import Context
from healthledger.contracts.contract import Contract, query, transaction
from healthledger.contracts.errors import AccessDenied, Rejected

__all__ = ["CaptureStep", "Operation", "SupplyContract", "valid_gs1_key"]


class SupplyContract(Contract):
    """Products, locations, units and their custody; anchors of every captured event."""

    name = "supply"
    policy = "OR('*.peer')"

    # --- master data ---------------------------------------------------------------

    @transaction(roles=MAKER_ROLES)
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

    @transaction()
    def register_location(self, ctx: Context, *, gln: str, name: str) -> dict[str, Any]:
        """Bind a GLN to the caller's organisation."""
        if not valid_gs1_key(gln, 13):
            raise Rejected(f"GLN {gln!r} is not 13 digits with a valid check digit")
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
        outcomes = [self._apply(ctx, step, index) for index, step in enumerate(steps)]
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
        outcome = self._apply(ctx, step, 0)
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
        prefix = f"trail/{unit}/"
        return [v for _, v in ctx.range(prefix, prefix + "~")]

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

    def _apply(self, ctx: Context, step: CaptureStep, index: int) -> dict[str, Any]:
        if not EVENT_HASH.match(step.event_hash):
            raise Rejected(f"event {index}: {step.event_hash!r} is not a CBV 2.0 event hash")
        if ctx.get(anchor_key(step.event_hash)) is not None:
            raise Rejected(f"event {index}: {step.event_hash} is already anchored")
        for unit in [*step.units, *([step.parent] if step.parent else [])]:
            if not UNIT_ID.match(unit):
                raise Rejected(f"event {index}: {unit!r} is not a GTIN+serial or SSCC id")
        for gln in (step.location, step.destination):
            if gln is not None and not GLN.match(gln):
                raise Rejected(f"event {index}: {gln!r} is not a GLN")
        before = self._touched(ctx, step)  # an unpack's children are gone afterwards
        signal = getattr(self, f"_{step.op}")(ctx, step)
        accepted = signal is None
        alerts = 0
        if signal is not None:
            kind, unit, detail = signal
            self._alert(ctx, kind, unit, step.event_hash, detail)
            alerts = 1
        touched = (
            before + [u for u in self._touched(ctx, step) if u not in before]
            if accepted
            else [*step.units]
        )
        anchor = {
            "event_hash": step.event_hash,
            "op": step.op,
            "units": step.units,
            "parent": step.parent,
            "location": step.location,
            "destination": step.destination,
            "org": ctx.caller.org,
            "by": ctx.caller.id,
            "tx_id": ctx.tx_id,
            "at": ctx.timestamp,
            "accepted": accepted,
            "reason": None if signal is None else signal[2],
        }
        if accepted and step.temperatures_dc:
            alerts += self._cold_chain(ctx, step, touched)
        ctx.put(anchor_key(step.event_hash), anchor)
        for unit in touched:
            record = ctx.get(unit_key(unit))
            if record is None:
                continue
            seq = record.get("seq", 0) + 1
            record["seq"] = seq
            record["last_event"] = step.event_hash
            record["last_tx"] = ctx.tx_id
            ctx.put(unit_key(unit), record)
            ctx.put(
                f"trail/{unit}/{seq:08d}",
                {
                    "event_hash": step.event_hash,
                    "op": step.op,
                    "org": ctx.caller.org,
                    "location": step.location,
                    "destination": step.destination,
                    "tx_id": ctx.tx_id,
                    "at": ctx.timestamp,
                    "accepted": accepted,
                    "via": None if unit in step.units else step.parent or "parent",
                    "temperature_range_dc": (
                        [min(step.temperatures_dc), max(step.temperatures_dc)]
                        if step.temperatures_dc
                        else None
                    ),
                },
            )
        ctx.emit("supply_event", {"event_hash": step.event_hash, "op": step.op})
        return {
            "event_hash": step.event_hash,
            "accepted": accepted,
            "reason": anchor["reason"],
            "alerts": alerts,
        }

    def _commission(self, ctx: Context, step: CaptureStep) -> None:
        if not step.units:
            raise Rejected("commission names no units")
        if step.lot is None or not step.lot.strip():
            raise Rejected("commission needs a lot")
        self._own_location(ctx, step.location)
        for unit in step.units:
            if not unit.startswith("01/"):
                raise Rejected(f"{unit}: only GTIN+serial units are commissioned")
            gtin, serial = unit[3:17], unit[21:]
            product = ctx.get(f"product/{gtin}")
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
                expiry = (
                    day_of(ctx.timestamp) + timedelta(days=product["shelf_life_days"])
                ).isoformat()
            elif not DATE.match(expiry):
                raise Rejected(f"expiry {expiry!r} is not YYYY-MM-DD")
            ctx.put(
                unit_key(unit),
                {
                    "unit": unit,
                    "gtin": gtin,
                    "serial": serial,
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
                    "seq": 0,
                },
            )

    def _pack(self, ctx: Context, step: CaptureStep) -> None:
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

    def _unpack(self, ctx: Context, step: CaptureStep) -> None:
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

    def _ship(self, ctx: Context, step: CaptureStep) -> None:
        if step.destination is None:
            raise Rejected("a shipment needs a destination GLN")
        if ctx.get(f"location/{step.destination}") is None:
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

    def _receive(self, ctx: Context, step: CaptureStep) -> None:
        for unit in step.units:
            record = self._unit(ctx, unit)
            if record["status"] != "in_transit":
                raise Rejected(f"{unit} is not in transit (status {record['status']})")
            bound_for = ctx.get(f"location/{record['destination']}")
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

    def _observe(self, ctx: Context, step: CaptureStep) -> tuple[str, str, str] | None:
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

    def _dispense(self, ctx: Context, step: CaptureStep) -> tuple[str, str, str] | None:
        if len(step.units) != 1:
            raise Rejected("dispense one unit at a time")
        unit = step.units[0]
        record = ctx.get(unit_key(unit))
        if record is None:
            return ("unknown_serial", unit, f"{unit} was never commissioned")
        if record["status"] in ("dispensed", "administered"):
            return ("dispensed_twice", unit, f"{unit} was already {record['status']}")
        if record["status"] in ("decommissioned", "destroyed"):
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

    def _decommission(self, ctx: Context, step: CaptureStep) -> None:
        self._retire(ctx, step, "decommissioned", "decommission")

    def _destroy(self, ctx: Context, step: CaptureStep) -> None:
        self._retire(ctx, step, "destroyed", "destroy")

    def _retire(self, ctx: Context, step: CaptureStep, status: str, verb: str) -> None:
        for unit in step.units:
            record = self._unit(ctx, unit)
            self._require_custody(ctx, record, verb)
            for member in with_descendants(ctx, unit):
                item = self._unit(ctx, member)
                item["status"] = status
                ctx.put(unit_key(member), item)

    def _cold_chain(self, ctx: Context, step: CaptureStep, touched: list[str]) -> int:
        """Quarantine every unit whose product's storage range a reading left."""
        low, high = min(step.temperatures_dc), max(step.temperatures_dc)
        quarantined: dict[str | None, list[str]] = {}
        for unit in touched:
            record = ctx.get(unit_key(unit))
            if record is None or record["gtin"] is None or record["quarantined"]:
                continue
            product = ctx.get(f"product/{record['gtin']}")
            if product is None or product["temp_min_dc"] <= low <= high <= product["temp_max_dc"]:
                continue
            record["quarantined"] = True
            ctx.put(unit_key(unit), record)
            quarantined.setdefault(record["maker"], []).append(unit)
        for maker, units in quarantined.items():
            self._alert(
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
        record = ctx.get(unit_key(unit))
        if record is None:
            raise Rejected(f"{unit} is not a commissioned unit")
        return dict(record)

    def _require_custody(self, ctx: Context, record: dict[str, Any], verb: str) -> None:
        if record["custodian"] != ctx.caller.org:
            raise AccessDenied(
                f"{ctx.caller.org} may not {verb} {record['unit']}: "
                f"its custodian is {record['custodian']}"
            )
        if record["status"] != "active":
            raise Rejected(f"{record['unit']} is {record['status']}: cannot {verb} it")

    def _own_location(self, ctx: Context, gln: str | None) -> None:
        if gln is None:
            raise Rejected("the event needs a location GLN")
        location = ctx.get(f"location/{gln}")
        if location is None or location["org"] != ctx.caller.org:
            raise AccessDenied(f"GLN {gln} is not a location of {ctx.caller.org}")

    def _recalled(self, ctx: Context, record: dict[str, Any]) -> bool:
        if record.get("recalled"):
            return True
        return ctx.get(f"recalled_lot/{record['gtin']}/{record['lot']}") is not None

    def _touched(self, ctx: Context, step: CaptureStep) -> list[str]:
        touched: list[str] = []
        for unit in [*step.units, *([step.parent] if step.parent else [])]:
            for member in with_descendants(ctx, unit):
                if member not in touched:
                    touched.append(member)
        return touched

    def _alert(
        self,
        ctx: Context,
        kind: str,
        unit: str,
        event_hash: str,
        detail: str,
        *,
        maker: str | None = None,
        units: list[str] | None = None,
    ) -> None:
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
