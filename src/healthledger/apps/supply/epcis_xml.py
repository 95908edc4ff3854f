"""EPCIS 2.0 XML documents read into the JSON-LD form that capture takes.

The XML binding and the JSON-LD binding of EPCIS 2.0 carry the same events; this
module maps one onto the other (lists of ``<epc>`` to arrays, ``type`` attributes
of business transactions, sources and destinations to ``type`` members, sensor
metadata and reports from attributes to members, extension elements to prefixed
members with their namespace in ``@context``), so that an XML document is checked
by the same JSON Schema and captured by the same path as a JSON-LD one.

No XSD of EPCIS 2.0 is in the conformance set, so an XML document is checked by
structure: the root, the event types and the standard fields this mapping knows,
then, after mapping, by the JSON Schema. Every violation is listed with the
element path where it was found. The capture service also checks that each
mapped event has the same CBV 2.0 event hash as its XML form: what is anchored is
what was sent.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

from healthledger.contracts.errors import InvalidArguments

EPCIS_NS = "urn:epcglobal:epcis:xsd:2"
EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
MAX_XML_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
"""Elements nested deeper are refused: mapping and hashing recurse per level."""
EVENT_TYPES = (
    "ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent",
    "AssociationEvent",
)  # fmt: skip
_TEXT_FIELDS = (
    "eventTime", "recordTime", "eventTimeZoneOffset", "eventID", "certificationInfo",
    "parentID", "action", "bizStep", "disposition", "transformationID",
)  # fmt: skip
_EPC_LISTS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
_QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
_TYPED_LISTS = {
    "bizTransactionList": "bizTransaction",
    "sourceList": "source",
    "destinationList": "destination",
}
_NUMERIC_ATTRIBUTES = (
    "value", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue",
)  # fmt: skip
_CBV_URNS = {
    "urn:epcglobal:cbv:bizstep:": "bizStep",
    "urn:epcglobal:cbv:disp:": "disposition",
    "urn:epcglobal:cbv:btt:": "bizTransaction type",
    "urn:epcglobal:cbv:sdt:": "source or destination type",
    "urn:epcglobal:cbv:er:": "error reason",
}
"""CBV 1.x URN prefixes of vocabulary values, written as bare CBV terms in JSON-LD."""
_VOCABULARIES = (("cbv", "https://ref.gs1.org/cbv/"), ("gs1", "https://gs1.org/voc/"))
_SCHEMES = ("http", "https", "urn")
_WRAPPERS = ("extension", "baseExtension")
"""EPCIS 1.x wrapper elements: their children belong to the element around them."""


class _Reader:
    """One document's mapping, collecting violations instead of stopping at the first."""

    def __init__(self, prefixes: dict[str, str]) -> None:
        self.prefixes = prefixes
        """Namespace URI -> the prefix the document declared for it."""
        self.used: dict[str, str] = {}
        """Prefix -> namespace URI of the extensions met, for ``@context``."""
        self.violations: list[dict[str, str]] = []

    def fault(self, path: str, message: str) -> None:
        self.violations.append({"field": path, "message": message})

    def name(self, element: ElementTree.Element, path: str) -> str | None:
        """``local`` for a standard element, ``prefix:local`` for an extension."""
        tag = element.tag
        if not isinstance(tag, str):
            return None
        if not tag.startswith("{"):
            return tag
        namespace, _, local = tag[1:].partition("}")
        prefix = self.prefixes.get(namespace)
        if prefix is None:
            self.fault(path, f"extension element {local!r} needs a namespace prefix")
            return None
        self.used[prefix] = namespace
        return f"{prefix}:{local}"

    def event(self, element: ElementTree.Element, path: str) -> dict[str, Any]:
        kind = self.name(element, path)
        event: dict[str, Any] = {"type": kind}
        for child in _children(element):
            name = self.name(child, path)
            where = f"{path}/{name}"
            if name is None:
                continue
            if ":" in name:
                _add(event, name, self.extension(child, where))
            elif name in ("bizStep", "disposition"):
                event[name] = _term(_text(child))
            elif name in _TEXT_FIELDS:
                event[name] = _text(child)
            elif name in _EPC_LISTS:
                event[name] = self.epcs(child, where)
            elif name in _QUANTITY_LISTS:
                event[name] = [self.quantity(q, f"{where}/{i}") for i, q in _indexed(child)]
            elif name in _TYPED_LISTS:
                event[name] = self.typed_list(child, _TYPED_LISTS[name], where)
            elif name in ("readPoint", "bizLocation", "ilmd"):
                event[name] = self.members(child, where)
            elif name == "sensorElementList":
                event[name] = [self.sensor_element(s, f"{where}/{i}") for i, s in _indexed(child)]
            elif name == "persistentDisposition":
                event[name] = self.persistent_disposition(child, where)
            elif name == "errorDeclaration":
                event[name] = self.error_declaration(child, where)
            else:
                self.fault(where, f"{name!r} is not a field of an EPCIS 2.0 {kind}")
        return event

    def epcs(self, element: ElementTree.Element, path: str) -> list[str]:
        found = []
        for i, child in _indexed(element):
            if child.tag != "epc":
                self.fault(f"{path}/{i}", f"expected <epc>, found <{_local(child)}>")
                continue
            found.append(_text(child))
        return found

    def quantity(self, element: ElementTree.Element, path: str) -> dict[str, Any]:
        if element.tag != "quantityElement":
            self.fault(path, f"expected <quantityElement>, found <{_local(element)}>")
            return {}
        found: dict[str, Any] = {}
        for child in _children(element):
            name = self.name(child, path)
            if name == "quantity":
                found[name] = self.number(_text(child), f"{path}/quantity")
            elif name in ("epcClass", "uom"):
                found[name] = _text(child)
            elif name is not None:
                self.fault(f"{path}/{name}", f"{name!r} is not a field of a quantity element")
        return found

    def typed_list(self, element: ElementTree.Element, item: str, path: str) -> list[Any]:
        found = []
        for i, child in _indexed(element):
            if child.tag != item:
                self.fault(f"{path}/{i}", f"expected <{item}>, found <{_local(child)}>")
                continue
            entry: dict[str, Any] = {}
            kind = child.get("type")
            if kind is not None:
                entry["type"] = _term(kind)
            entry[item] = _text(child)
            found.append(entry)
        return found

    def members(self, element: ElementTree.Element, path: str) -> dict[str, Any]:
        """A readPoint, bizLocation or ilmd: standard ``id`` and extension members."""
        found: dict[str, Any] = {}
        for child in _children(element):
            name = self.name(child, path)
            if name is None:
                continue
            if ":" in name:
                _add(found, name, self.extension(child, f"{path}/{name}"))
            elif name == "id" and element.tag in ("readPoint", "bizLocation"):
                found["id"] = _text(child)
            else:
                self.fault(f"{path}/{name}", f"{name!r} is not a field of {_local(element)}")
        return found

    def sensor_element(self, element: ElementTree.Element, path: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for child in _children(element):
            name = self.name(child, path)
            if name is None:
                continue
            if name == "sensorMetadata":
                found[name] = self.attributes(child, f"{path}/{name}")
            elif name == "sensorReport":
                found.setdefault(name, []).append(self.attributes(child, f"{path}/{name}"))
            elif ":" in name:
                _add(found, name, self.extension(child, f"{path}/{name}"))
            else:
                self.fault(f"{path}/{name}", f"{name!r} is not a field of a sensor element")
        return found

    def attributes(self, element: ElementTree.Element, path: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in element.items():
            if key.startswith("{"):
                namespace, _, local = key[1:].partition("}")
                prefix = self.prefixes.get(namespace)
                if not prefix:
                    self.fault(path, f"attribute {local!r} needs a namespace prefix")
                    continue
                self.used[prefix] = namespace
                found[f"{prefix}:{local}"] = value
            elif key in _NUMERIC_ATTRIBUTES:
                found[key] = self.number(value, f"{path}/@{key}")
            elif key == "booleanValue":
                found[key] = value.strip() in ("true", "1")
            else:
                found[key] = value
        for child in _children(element):
            name = self.name(child, path)
            if name is not None:
                _add(found, name, self.extension(child, f"{path}/{name}"))
        return found

    def persistent_disposition(self, element: ElementTree.Element, path: str) -> dict[str, Any]:
        found: dict[str, list[str]] = {}
        for child in _children(element):
            name = self.name(child, path)
            if name in ("set", "unset"):
                found.setdefault(name, []).append(_term(_text(child)))
            elif name is not None:
                self.fault(f"{path}/{name}", f"{name!r} is not set or unset")
        return dict(found)

    def error_declaration(self, element: ElementTree.Element, path: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for child in _children(element):
            name = self.name(child, path)
            if name is None:
                continue
            if name == "declarationTime":
                found[name] = _text(child)
            elif name == "reason":
                found[name] = _term(_text(child))
            elif name == "correctiveEventIDs":
                found[name] = [_text(c) for c in _children(child)]
            elif ":" in name:
                _add(found, name, self.extension(child, f"{path}/{name}"))
            else:
                self.fault(f"{path}/{name}", f"{name!r} is not a field of an error declaration")
        return found

    def extension(self, element: ElementTree.Element, path: str) -> Any:
        """An extension element: its text, or its children as members."""
        children = _children(element)
        if not children:
            return _text(element)
        found: dict[str, Any] = {}
        for child in children:
            name = self.name(child, path)
            if name is not None:
                _add(found, name, self.extension(child, f"{path}/{name}"))
        return found

    def number(self, text: str, path: str) -> int | float | None:
        try:
            value = Decimal(text.strip())
        except InvalidOperation:
            self.fault(path, f"{text!r} is not a number")
            return None
        if not value.is_finite():
            self.fault(path, f"{text!r} is not a finite number")
            return None
        return int(value) if value == value.to_integral_value() else float(value)


def xml_document(data: bytes | str) -> dict[str, Any]:
    """The JSON-LD form of an EPCIS 2.0 XML document; InvalidArguments lists each violation
    (by element path) when it is not one."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_XML_BYTES:
        _refuse([{"field": "/", "message": f"larger than {MAX_XML_BYTES // 2**20} MB"}])
    prefixes: dict[str, str] = {}
    try:
        root: ElementTree.Element | None = None
        # The stdlib parser (expat >= 2.4.1) refuses entity-expansion bombs and never
        # fetches external entities.
        for kind, item in ElementTree.iterparse(io.BytesIO(raw), events=("start-ns", "start")):  # noqa: S314
            if kind == "start-ns":
                prefix, uri = item
                # A prefix that reads as a URI scheme would turn values into other IRIs.
                if prefix and prefix not in _SCHEMES:
                    prefixes.setdefault(uri, prefix)
            elif root is None:
                root = item
    except ElementTree.ParseError as exc:
        _refuse([{"field": "/", "message": f"not well-formed XML: {exc}"}])
    except (LookupError, ValueError) as exc:
        # An encoding expat lacks goes to Python's codecs, which refuse unknown names,
        # non-text codecs and multi-byte encodings with these errors.
        _refuse([{"field": "/", "message": f"unsupported encoding: {exc}"}])
    if root is None or root.tag != f"{{{EPCIS_NS}}}EPCISDocument":
        found = "nothing" if root is None else f"<{root.tag}>"
        expected = f"{{{EPCIS_NS}}}EPCISDocument"
        _refuse([{"field": "/", "message": f"the root must be {expected}, not {found}"}])
    if _deeper_than(root, MAX_DEPTH):
        _refuse([{"field": "/", "message": f"elements nested deeper than {MAX_DEPTH} levels"}])
    reader = _Reader(prefixes)
    document: dict[str, Any] = {"type": "EPCISDocument"}
    for attribute in ("schemaVersion", "creationDate"):
        value = root.get(attribute)
        if value is None:
            reader.fault("/EPCISDocument", f"the {attribute!r} attribute is required")
        else:
            document[attribute] = value
    body = root.find("EPCISBody")
    event_list = None if body is None else body.find("EventList")
    events: list[dict[str, Any]] = []
    if event_list is None:
        reader.fault("/EPCISDocument", "no EPCISBody/EventList")
    else:
        for i, element in _indexed(event_list):
            path = f"/EPCISBody/EventList/{i}"
            if element.tag not in EVENT_TYPES:
                reader.fault(path, f"<{_local(element)}> is not an EPCIS 2.0 event type")
                continue
            events.append(reader.event(element, path))
    if reader.violations:
        _refuse(reader.violations)
    # The XML binding reads gs1: and cbv: values as these vocabularies; JSON-LD needs them said.
    document["@context"] = [
        EPCIS_CONTEXT,
        *({p: ns} for p, ns in _VOCABULARIES if p not in reader.used),
        *({p: ns} for p, ns in sorted(reader.used.items())),
    ]
    document["epcisBody"] = {"eventList": events}
    return document


def _term(value: str) -> str:
    """A CBV vocabulary value as JSON-LD writes it: ``urn:epcglobal:cbv:bizstep:shipping``
    is ``shipping``; anything else is kept."""
    for prefix in _CBV_URNS:
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def _refuse(violations: list[dict[str, str]]) -> NoReturn:
    summary = "; ".join(f"{v['field']}: {v['message']}" for v in violations[:5])
    more = f" (and {len(violations) - 5} more)" if len(violations) > 5 else ""
    raise InvalidArguments(f"not an EPCIS 2.0 XML document: {summary}{more}", violations)


def _deeper_than(root: ElementTree.Element, limit: int) -> bool:
    """Whether elements nest deeper than ``limit`` under ``root`` (counted without recursion)."""
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in element)
    return False


def _children(element: ElementTree.Element) -> list[ElementTree.Element]:
    """The element's children, with EPCIS 1.x ``extension`` wrappers opened."""
    found: list[ElementTree.Element] = []
    for child in element:
        if child.tag in _WRAPPERS:
            found.extend(_children(child))
        elif isinstance(child.tag, str):
            found.append(child)
    return found


def _indexed(element: ElementTree.Element) -> Iterator[tuple[int, ElementTree.Element]]:
    return enumerate(_children(element))


def _text(element: ElementTree.Element) -> str:
    return (element.text or "").strip()


def _local(element: ElementTree.Element) -> str:
    return str(element.tag).rpartition("}")[2]


def _add(members: dict[str, Any], name: str, value: Any) -> None:
    """Set a member; a repeated extension element becomes a list."""
    if name not in members:
        members[name] = value
    elif isinstance(members[name], list):
        members[name].append(value)
    else:
        members[name] = [members[name], value]
