"""Capture of EPCIS 2.0 documents: validate, hash, reduce each event to its custody step, anchor.

The API routes, the CLI and the simulator all capture through :class:`CaptureService`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from healthledger.apps.supply.digital_link import normalise
from healthledger.apps.supply.event_hash import EpcisDocumentError, event_hashes
from healthledger.apps.supply.event_store import EventStore
from healthledger.apps.supply.schema import EpcisSchema, default_schema_path
from healthledger.contracts.errors import InvalidArguments
from healthledger.node.embedded import EmbeddedNode

CONTRACT = "supply"
_ID_PREFIX = "https://id.gs1.org/"
_BIZ_STEPS = {
    "commissioning": "commission",
    "packing": "pack",
    "unpacking": "unpack",
    "shipping": "ship",
    "receiving": "receive",
    "accepting": "receive",
    "arriving": "receive",
    "dispensing": "dispense",
    "decommissioning": "decommission",
    "destroying": "destroy",
}
_LOT_KEYS = ("cbvmda:lotNumber", "lotNumber", "https://gs1.org/voc/lotNumber")
_EXPIRY_KEYS = (
    "cbvmda:itemExpirationDate",
    "itemExpirationDate",
    "https://gs1.org/voc/itemExpirationDate",
)


@dataclass(frozen=True)
class CaptureConfig:
    """Where the EPCIS JSON Schema is (None: the conformance copy, if this is a checkout)."""

    schema_path: Path | None = None


def unit_id(uri: str) -> str | None:
    """The unit id (Digital Link path ``01/<gtin>/21/<serial>`` or ``00/<sscc>``) of an EPC."""
    canonical = normalise(uri)
    if canonical is None or not canonical.startswith(_ID_PREFIX):
        return None
    path = canonical[len(_ID_PREFIX) :]
    if path.startswith("00/") or (path.startswith("01/") and "/21/" in path):
        return path
    return None


def location_gln(place: Any) -> str | None:
    """The 13-digit GLN of a readPoint/bizLocation/destination id."""
    if isinstance(place, dict):
        place = place.get("id")
    if not isinstance(place, str):
        return None
    canonical = normalise(place)
    if canonical is None or not canonical.startswith(_ID_PREFIX + "414/"):
        return None
    return canonical[len(_ID_PREFIX) + 4 : len(_ID_PREFIX) + 17]


def _biz_step(event: dict[str, Any]) -> str:
    raw = str(event.get("bizStep", ""))
    for marker in ("BizStep-", "bizstep:"):
        if marker in raw:
            raw = raw.rsplit(marker, 1)[1]
    return raw


def _first(mapping: Any, keys: tuple[str, ...]) -> str | None:
    if isinstance(mapping, dict):
        for key in keys:
            if isinstance(mapping.get(key), str):
                return str(mapping[key])
    return None


_TEMPERATURE_TYPES = ("Temperature", "gs1:Temperature", "https://gs1.org/voc/Temperature")
_READING_KEYS = ("value", "minValue", "maxValue", "meanValue")


def temperatures_dc(event: dict[str, Any]) -> list[int]:
    """Temperature readings of an event's sensor reports, in tenths of a degree Celsius."""
    found: list[int] = []
    for element in event.get("sensorElementList") or []:
        reports = element.get("sensorReport") if isinstance(element, dict) else None
        for report in reports or []:
            if not isinstance(report, dict) or report.get("type") not in _TEMPERATURE_TYPES:
                continue
            uom = report.get("uom", "CEL")
            for key in _READING_KEYS:
                value = report.get(key)
                if isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                celsius = Decimal(str(value))
                if uom == "FAH":
                    celsius = (celsius - 32) * 5 / 9
                elif uom != "CEL":
                    continue
                found.append(int((celsius * 10).to_integral_value(ROUND_HALF_EVEN)))
    return found


def capture_step(event: dict[str, Any], event_hash: str, index: int) -> dict[str, Any]:
    """The custody step of one EPCIS JSON-LD event (the ``supply.capture`` argument)."""
    kind = event.get("type")
    step = _BIZ_STEPS.get(_biz_step(event))
    if kind == "AggregationEvent" and step not in ("pack", "unpack", "ship", "receive"):
        step = {"ADD": "pack", "DELETE": "unpack"}.get(str(event.get("action")), "observe")
    op = step or "observe"
    epcs = event.get("childEPCs" if kind == "AggregationEvent" else "epcList") or []
    units = []
    for epc in epcs:
        unit = unit_id(str(epc))
        if unit is None:
            raise InvalidArguments(
                f"event {index}: {epc!r} is not a GS1 serialised or logistic unit",
                [{"field": f"/events/{index}", "message": f"{epc!r} is not a unit id"}],
            )
        units.append(unit)
    parent = unit_id(str(event["parentID"])) if event.get("parentID") else None
    if kind == "AggregationEvent" and op in ("ship", "receive") and parent:
        units, parent = [parent], None
    location = location_gln(event.get("bizLocation")) or location_gln(event.get("readPoint"))
    destination = None
    for entry in event.get("destinationList") or []:
        if isinstance(entry, dict):
            destination = destination or location_gln(entry.get("destination"))
    ilmd = event.get("ilmd")
    return {
        "event_hash": event_hash,
        "op": op,
        "units": units,
        "parent": parent,
        "location": location,
        "destination": destination,
        "lot": _first(ilmd, _LOT_KEYS),
        "expiry": _first(ilmd, _EXPIRY_KEYS),
        "temperatures_dc": temperatures_dc(event),
    }


class CaptureService:
    """Capture EPCIS documents into the supply contract of one node."""

    def __init__(
        self,
        node: EmbeddedNode,
        *,
        config: CaptureConfig | None = None,
        events: EventStore | None = None,
    ) -> None:
        self.node = node
        self.events = events
        """Where committed event documents are kept (None: not kept)."""
        config = config or CaptureConfig()
        path = config.schema_path or default_schema_path()
        self.schema = None if path is None else EpcisSchema(path=path)

    def prepare(self, document: Any) -> list[dict[str, Any]]:
        """Validate ``document`` and return the capture steps of its events, in order."""
        if self.schema is None:
            raise InvalidArguments("no EPCIS JSON Schema is configured: capture is disabled")
        self.schema.check(document)
        if document.get("type") != "EPCISDocument":
            raise InvalidArguments(
                "only EPCISDocument can be captured",
                [{"field": "/type", "message": "must be EPCISDocument"}],
            )
        try:
            hashes = event_hashes(json.dumps(document), fmt="json")
        except EpcisDocumentError as exc:
            raise InvalidArguments(str(exc), [{"field": "/", "message": str(exc)}]) from exc
        events = document["epcisBody"]["eventList"]
        if not events:
            raise InvalidArguments(
                "the document has no events",
                [{"field": "/epcisBody/eventList", "message": "is empty"}],
            )
        return [
            capture_step(e, h.hash, i) for i, (e, h) in enumerate(zip(events, hashes, strict=True))
        ]

    def capture(self, identity: str, document: Any) -> dict[str, Any]:
        """Validate, then anchor every event in one transaction signed as ``identity``
        (demo custody: the node must hold that identity's key). All or nothing."""
        steps = self.prepare(document)
        receipt, result = self.node.invoke(identity, CONTRACT, "capture", {"steps": steps})
        if self.events is not None:
            events = document["epcisBody"]["eventList"]
            self.events.add(
                receipt.tx_id,
                document.get("@context"),
                [(s["event_hash"], e) for s, e in zip(steps, events, strict=True)],
            )
        return {"receipt": receipt.to_json(), "result": result, "tx_id": receipt.tx_id}
