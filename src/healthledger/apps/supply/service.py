"""Capture of EPCIS 2.0 documents: validate, hash, reduce each event to its custody step, anchor.

The API routes, the CLI and the simulator all capture through :class:`CaptureService`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from healthledger.apps.supply.digital_link import normalise
from healthledger.apps.supply.epcis_xml import xml_document
from healthledger.apps.supply.event_hash import (
    EpcisDocumentError,
    event_hashes,
    json_document_hashes,
)
from healthledger.apps.supply.event_store import EventStore
from healthledger.apps.supply.schema import EpcisSchema, default_schema_path
from healthledger.contracts.errors import InvalidArguments
from healthledger.node.seam import AppNode

CONTRACT = "supply"
MAX_DEPTH = 64
"""Objects and arrays nested deeper are refused: hashing an event recurses per level."""
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
    """Where the EPCIS JSON Schema is (None: the copy inside the package)."""

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


def asset_id(uri: str) -> str | None:
    """The asset id (Digital Link path ``8004/<giai>`` or ``8003/<grai>``) of an EPC."""
    canonical = normalise(uri)
    if canonical is None or not canonical.startswith(_ID_PREFIX):
        return None
    path = canonical[len(_ID_PREFIX) :]
    return path if path.startswith(("8004/", "8003/")) else None


def _ids(
    epcs: Any, index: int, field: str, read: Callable[[str], str | None], what: str
) -> list[str]:
    found = []
    for i, epc in enumerate(epcs or []):
        value = read(str(epc))
        if value is None:
            raise InvalidArguments(
                f"event {index}: {epc!r} is not {what}",
                [{"field": f"/epcisBody/eventList/{index}/{field}/{i}", "message": f"not {what}"}],
            )
        found.append(value)
    return found


_UNIT = "a GS1 serialised or logistic unit"
_ASSET = "a GS1 asset (GIAI or GRAI)"


def _what(event: dict[str, Any], index: int) -> tuple[str, list[str], str | None, list[str]]:
    """The operation, units, parent and outputs of an event."""
    kind = event.get("type")
    action = str(event.get("action"))
    if kind == "TransformationEvent":
        inputs = _ids(event.get("inputEPCList"), index, "inputEPCList", unit_id, _UNIT)
        outputs = _ids(event.get("outputEPCList"), index, "outputEPCList", unit_id, _UNIT)
        return ("transform" if inputs or outputs else "observe"), inputs, None, outputs
    if kind == "AssociationEvent":
        op = {"ADD": "associate", "DELETE": "dissociate"}.get(action, "observe")
        if op == "observe":
            return op, [], None, []
        children = _ids(event.get("childEPCs"), index, "childEPCs", asset_id, _ASSET)
        raw = str(event.get("parentID") or "")
        parent = unit_id(raw) or asset_id(raw) if raw else None
        if parent is None:
            message = f"parentID {raw!r} is not a unit or an asset" if raw else "needs a parentID"
            raise InvalidArguments(
                f"event {index}: {message}",
                [{"field": f"/epcisBody/eventList/{index}/parentID", "message": message}],
            )
        return op, children, parent, []
    step = _BIZ_STEPS.get(_biz_step(event))
    if kind == "AggregationEvent" and step not in ("pack", "unpack", "ship", "receive"):
        step = {"ADD": "pack", "DELETE": "unpack"}.get(action, "observe")
    field = "childEPCs" if kind == "AggregationEvent" else "epcList"
    units = _ids(event.get(field), index, field, unit_id, _UNIT)
    parent = unit_id(str(event["parentID"])) if event.get("parentID") else None
    return step or "observe", units, parent, []


def capture_step(event: dict[str, Any], event_hash: str, index: int) -> dict[str, Any]:
    """The custody step of one EPCIS JSON-LD event (the ``supply.capture`` argument)."""
    kind = event.get("type")
    op, units, parent, outputs = _what(event, index)
    if kind == "AggregationEvent" and op in ("ship", "receive") and parent:
        units, parent = [parent], None
    location = location_gln(event.get("bizLocation")) or location_gln(event.get("readPoint"))
    destination = None
    for entry in event.get("destinationList") or []:
        if isinstance(entry, dict):
            destination = destination or location_gln(entry.get("destination"))
    ilmd = event.get("ilmd")
    found: dict[str, Any] = {
        "event_hash": event_hash,
        "op": op,
        "units": units,
        "parent": parent,
        "outputs": outputs,
        "location": location,
        "destination": destination,
        "lot": _first(ilmd, _LOT_KEYS),
        "expiry": _first(ilmd, _EXPIRY_KEYS),
        "temperatures_dc": temperatures_dc(event),
    }
    # Absent fields take the CaptureStep defaults: a smaller proposal to encode, sign and store.
    return {k: v for k, v in found.items() if (v is not None and v != []) or k == "units"}


def _deeper_than(document: Any, limit: int) -> bool:
    """Whether objects and arrays nest deeper than ``limit`` (counted without recursion)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            if depth > limit:
                return True
            stack.extend((item, depth + 1) for item in value)
    return False


def document_steps(schema: EpcisSchema, document: Any) -> list[dict[str, Any]]:
    """Validate an EPCIS 2.0 JSON-LD ``document`` against ``schema`` and return the
    capture steps of its events, in order."""
    if _deeper_than(document, MAX_DEPTH):
        message = f"objects and arrays nested deeper than {MAX_DEPTH} levels"
        raise InvalidArguments(message, [{"field": "/", "message": message}])
    schema.check(document)
    if document.get("type") != "EPCISDocument":
        raise InvalidArguments(
            "only EPCISDocument can be captured",
            [{"field": "/type", "message": "must be EPCISDocument"}],
        )
    try:
        hashes = json_document_hashes(document)
    except (EpcisDocumentError, UnicodeEncodeError) as exc:
        raise InvalidArguments(str(exc), [{"field": "/", "message": str(exc)}]) from exc
    events = document["epcisBody"]["eventList"]
    if not events:
        raise InvalidArguments(
            "the document has no events",
            [{"field": "/epcisBody/eventList", "message": "is empty"}],
        )
    return [capture_step(e, h.hash, i) for i, (e, h) in enumerate(zip(events, hashes, strict=True))]


def xml_document_steps(
    schema: EpcisSchema, data: bytes | str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An EPCIS 2.0 XML document as JSON-LD (checked by structure, then by the JSON
    Schema) and the capture steps of its events. An event whose JSON-LD form would
    not keep the event hash of its XML form is refused: the anchor must vouch for
    what was sent, and the read model keeps the JSON-LD form."""
    document = xml_document(data)
    try:
        sent = event_hashes(data, fmt="xml")
    except (EpcisDocumentError, UnicodeDecodeError) as exc:
        raise InvalidArguments(str(exc), [{"field": "/", "message": str(exc)}]) from exc
    steps = document_steps(schema, document)
    changed = [
        {
            "field": f"/EPCISBody/EventList/{i}",
            "message": "this event hashes differently in JSON-LD (a custom-prefixed value, "
            "a boolean or a document-level ignoreFields): send it as JSON-LD",
        }
        for i, (step, xml) in enumerate(zip(steps, sent, strict=True))
        if step["event_hash"] != xml.hash
    ]
    if changed:
        raise InvalidArguments(
            f"{len(changed)} event(s) cannot be captured from XML with their event hash kept",
            changed,
        )
    return document, steps


class CaptureService:
    """Capture EPCIS documents into the supply contract of one node."""

    def __init__(
        self,
        node: AppNode,
        *,
        config: CaptureConfig | None = None,
        events: EventStore | None = None,
    ) -> None:
        self.node = node
        self.events = events
        """Where committed event documents are kept (None: not kept)."""
        config = config or CaptureConfig()
        self.schema = EpcisSchema(path=config.schema_path or default_schema_path())

    def prepare(self, document: Any) -> list[dict[str, Any]]:
        """Validate ``document`` and return the capture steps of its events, in order."""
        return document_steps(self.schema, document)

    def prepare_xml(self, data: bytes | str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """An EPCIS 2.0 XML document as JSON-LD and the capture steps of its events
        (:func:`xml_document_steps`)."""
        return xml_document_steps(self.schema, data)

    def capture_xml(self, identity: str, data: bytes | str) -> dict[str, Any]:
        """Capture an EPCIS 2.0 XML document as :meth:`capture` does a JSON-LD one."""
        document, steps = self.prepare_xml(data)
        return self._anchor(identity, document, steps)

    def capture(self, identity: str, document: Any) -> dict[str, Any]:
        """Validate, then anchor every event in one transaction signed as ``identity``
        (demo custody: the node must hold that identity's key). All or nothing."""
        return self._anchor(identity, document, self.prepare(document))

    def _anchor(self, identity: str, document: Any, steps: list[dict[str, Any]]) -> dict[str, Any]:
        receipt, result = self.node.invoke(identity, CONTRACT, "capture", {"steps": steps})
        self.keep(receipt.tx_id, document, steps)
        return {"receipt": receipt.to_json(), "result": result, "tx_id": receipt.tx_id}

    def keep(self, tx_id: str, document: Any, steps: list[dict[str, Any]]) -> None:
        """Keep the events of ``document``, anchored by the committed ``tx_id``, in the
        read model (a console form signs the capture itself, then keeps its events)."""
        if self.events is not None:
            events = document["epcisBody"]["eventList"]
            self.events.add(
                tx_id,
                document.get("@context"),
                [(s["event_hash"], e) for s, e in zip(steps, events, strict=True)],
            )
