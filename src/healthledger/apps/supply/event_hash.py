"""The EPCIS event hash of GS1 CBV 2.0 section 8.9, for EPCIS 2.0 JSON-LD and XML documents.

Each event is read into one neutral tree of ``(name, text, children)`` nodes, so
that the JSON-LD and the XML form of one event give the same tree; the tree is
written out in the canonical property order as the pre-hash string, and the
event hash is ``ni:///sha-256;<hex of SHA-256 of the pre-hash>?ver=CBV2.0``.

The rules (property order, value canonicalisation, the order of list items and
of user extensions) are those of the reference implementation the conformance
examples were produced with (``../shared/conformance/epcis-event-hash``); where
that implementation has a quirk, the quirk is kept, because an event hash that
differs from everyone else's anchors nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from healthledger.apps.supply.cbv_vocabulary import VOCABULARY_TERMS
from healthledger.apps.supply.digital_link import normalise
from healthledger.errors import HealthledgerError

Node = tuple[Any, ...]
"""``(name, text, children)``; or, inside a bizTransaction/source/destination list,
the group ``(type node, value node)`` (``(value node,)`` when the entry has no type)."""
Order = Sequence[tuple[Any, Any]]

_QTY: Order = (("quantityElement", (("epcClass", None), ("quantity", None), ("uom", None))),)
_SENSOR_METADATA = (
    "time", "startTime", "endTime", "deviceID", "deviceMetadata", "rawData",
    "dataProcessingMethod", "bizRules",
)  # fmt: skip
_SENSOR_REPORT = (
    "type", "exception", "deviceID", "deviceMetadata", "rawData", "dataProcessingMethod",
    "time", "microorganism", "chemicalSubstance", "value", "component", "stringValue",
    "booleanValue", "hexBinaryValue", "uriValue", "minValue", "maxValue", "meanValue",
    "sDev", "percRank", "percValue", "uom", "coordinateReferenceSystem",
)  # fmt: skip

PROPERTY_ORDER: Order = (
    ("eventTime", None),
    ("eventTimeZoneOffset", None),
    ("certificationInfo", None),
    ("parentID", None),
    ("epcList", (("epc", None),)),
    ("inputEPCList", (("epc", None),)),
    ("childEPCs", (("epc", None),)),
    ("quantityList", _QTY),
    ("childQuantityList", _QTY),
    ("inputQuantityList", _QTY),
    ("outputEPCList", (("epc", None),)),
    ("outputQuantityList", _QTY),
    ("action", None),
    ("transformationID", None),
    ("bizStep", None),
    ("disposition", None),
    ("persistentDisposition", (("set", None), ("unset", None))),
    ("readPoint", (("id", None),)),
    ("bizLocation", (("id", None),)),
    ("bizTransactionList", ((("type", None), ("bizTransaction", None)),)),
    ("sourceList", ((("type", None), ("source", None)),)),
    ("destinationList", ((("type", None), ("destination", None)),)),
    (
        "sensorElementList",
        (
            (
                "sensorElement",
                (
                    (
                        "sensorMetadata",
                        tuple((n, None) for n in _SENSOR_METADATA),
                    ),
                    ("sensorReport", tuple((n, None) for n in _SENSOR_REPORT)),
                ),
            ),
        ),
    ),
)
"""The canonical order of an event's properties (CBV 2.0 section 8.9.2)."""

_IGNORED = ("recordTime", "eventID", "type", "errorDeclaration")
"""Top-level properties that take no part in the hash."""
_PAIRED = ("bizTransaction", "source", "destination")
_PAIRED_LISTS = ("sourceList", "destinationList", "bizTransactionList")
_OLD_CBV_URNS = (
    ("urn:epcglobal:cbv:bizstep:", "https://ref.gs1.org/cbv/BizStep-"),
    ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-"),
    ("urn:epcglobal:cbv:btt:", "https://ref.gs1.org/cbv/BTT-"),
    ("urn:epcglobal:cbv:sdt:", "https://ref.gs1.org/cbv/SDT-"),
    ("urn:epcglobal:cbv:er:", "https://ref.gs1.org/cbv/ER-"),
)
_XML_PREFIXES = (("gs1:", "https://gs1.org/voc/"), ("cbv:", "https://ref.gs1.org/cbv/"))
_VOCABULARY_PREFIXES = {"cbv": "https://ref.gs1.org/cbv/", "gs1": "https://gs1.org/voc/"}


class EpcisDocumentError(ValueError, HealthledgerError):
    """The input is not an EPCIS 2.0 document whose events can be hashed."""


@dataclass(frozen=True)
class EventHash:
    """The hash of one event of a document."""

    prehash: str
    """The canonical pre-hash string (CBV 2.0 section 8.9.3)."""
    hash: str
    """``ni:///sha-256;<hex>?ver=CBV2.0``."""


def hash_of_prehash(prehash: str) -> str:
    """The event hash URI of a pre-hash string."""
    return "ni:///sha-256;" + hashlib.sha256(prehash.encode("utf-8")).hexdigest() + "?ver=CBV2.0"


def event_hashes(document: str | bytes, *, fmt: str | None = None) -> list[EventHash]:
    """The pre-hash and hash of every event of ``document``, in document order.

    ``fmt`` is ``"json"`` or ``"xml"``; by default it is guessed from the first
    character. Raises EpcisDocumentError for anything that is not an EPCIS
    document with events."""
    text = document.decode("utf-8") if isinstance(document, bytes) else document
    if fmt is None:
        fmt = "xml" if text.lstrip().startswith("<") else "json"
    if fmt == "xml":
        events = _xml_events(text)
    elif fmt == "json":
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EpcisDocumentError(f"not JSON: {exc}") from exc
        return json_document_hashes(parsed)
    else:
        raise EpcisDocumentError(f"unknown format {fmt!r}")
    result = []
    for event in events:
        prehash = _event_prehash(event)
        result.append(EventHash(prehash, hash_of_prehash(prehash)))
    return result


def json_document_hashes(document: Any) -> list[EventHash]:
    """The pre-hash and hash of every event of an already parsed JSON-LD ``document``."""
    result = []
    for event in json_events(document):
        prehash = _event_prehash(event)
        result.append(EventHash(prehash, hash_of_prehash(prehash)))
    return result


def prehash_of_json_event(event: Mapping[str, Any], context: Any = None) -> str:
    """The pre-hash string of one JSON-LD event (``context``: the document's ``@context``)."""
    return _event_prehash(json_events({"@context": context, "epcisBody": {"event": event}})[0])


# --- JSON-LD -------------------------------------------------------------------------------


def json_events(document: Any) -> list[Node]:
    """The events of a parsed EPCIS JSON-LD document as trees."""
    if not isinstance(document, dict):
        raise EpcisDocumentError("an EPCIS document is a JSON object")
    body = document.get("epcisBody")
    if not isinstance(body, dict):
        raise EpcisDocumentError("no epcisBody")
    if "eventList" in body:
        event_list = body["eventList"]
    elif "event" in body:
        event_list = [body["event"]]
    elif isinstance(body.get("queryResults"), dict):
        event_list = body["queryResults"].get("resultsBody", {}).get("eventList")
    else:
        raise EpcisDocumentError("epcisBody has no eventList")
    if not isinstance(event_list, list) or not all(isinstance(e, dict) for e in event_list):
        raise EpcisDocumentError("eventList must be a list of event objects")
    vocabulary = _vocabulary_iris(document)
    namespaces = _context_namespaces(document.get("@context"))
    ignored = {_replace_namespace(name, namespaces) for name in _json_ignore_fields(document)}
    events = [
        _correct_structure(_json_tree(_expand_bare_strings(event, vocabulary), namespaces))
        for event in event_list
    ]
    return [_without(event, ignored) for event in events]


def _json_ignore_fields(node: Any) -> list[str]:
    """Field names a document lists under ``<prefix>:ignoreFields`` (outside its events)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "eventList":
                continue
            if key.rpartition(":")[2] == "ignoreFields" and isinstance(value, list):
                found.extend(v for v in value if isinstance(v, str))
            else:
                found.extend(_json_ignore_fields(value))
    return found


def _without(event: Node, ignored: set[str]) -> Node:
    if not ignored:
        return event
    return (event[0], event[1], [c for c in event[2] if c[0] not in ignored])


def expand_compact(iri: str) -> str | None:
    """The full IRI of a ``cbv:``/``gs1:`` compact IRI or vocabulary IRI, else None."""
    prefix, _, rest = iri.partition(":")
    if prefix in _VOCABULARY_PREFIXES and rest and not rest.startswith("//"):
        return _VOCABULARY_PREFIXES[prefix] + rest
    if iri.startswith(tuple(_VOCABULARY_PREFIXES.values())):
        return iri
    return None


def _vocabulary_iris(document: Any) -> set[str]:
    """The CBV and GS1 vocabulary IRIs the document's bare-string values expand to.

    JSON-LD expansion against the (local) EPCIS context turns ``"shipping"`` into
    ``https://ref.gs1.org/cbv/BizStep-shipping``; this is the set of such IRIs."""
    found: set[str] = set()
    for value in _strings(document):
        found.update(VOCABULARY_TERMS.get(value, ()))
        expanded = expand_compact(value)
        if expanded is not None:
            found.add(expanded)
    return found


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)


def _expand_bare_strings(node: Any, vocabulary: set[str]) -> Any:
    if isinstance(node, str):
        matches = [v for v in vocabulary if v.endswith("-" + node) or v.endswith("/" + node)]
        return matches[0] if len(matches) == 1 else node
    if isinstance(node, list):
        return [_expand_bare_strings(item, vocabulary) for item in node]
    if isinstance(node, dict):
        return {key: _expand_bare_strings(value, vocabulary) for key, value in node.items()}
    return node


def _context_namespaces(context: Any) -> dict[str, str]:
    namespaces: dict[str, str] = {}
    if isinstance(context, list):
        for entry in context:
            if isinstance(entry, str):
                namespaces[entry] = "{" + entry + "}"
            elif isinstance(entry, dict):
                for key, value in entry.items():
                    namespaces[key] = "{" + str(value) + "}"
    return namespaces


def _replace_namespace(text: str, namespaces: Mapping[str, str], *, value: bool = False) -> str:
    prefix, sep, rest = text.partition(":")
    if sep and prefix in namespaces:
        iri = namespaces[prefix]
        return (iri.replace("{", "").replace("}", "") if value else iri) + rest
    return text


def _json_scalar(value: Any) -> str:
    # Python's str() of the JSON value, as the reference implementation writes it.
    return str(value)


def _json_tree(obj: Any, namespaces: dict[str, str]) -> Node:
    node: Node = ("", "", [])
    if isinstance(obj, list):
        for item in obj:
            node[2].append(_json_tree(item, namespaces))
    elif isinstance(obj, dict):
        if "type" in obj:
            node = (obj["type"], "", [])
        if "#text" in obj:
            node = (node[0], obj["#text"], node[2])
        for key, value in obj.items():
            if key in ("#text", "rdfs:comment", "comment"):
                continue
            if key.startswith("@xmlns"):
                namespaces[key[7:]] = "{" + str(value) + "}"
                name = node[0]
                if isinstance(name, str):
                    node = (_replace_namespace(name, namespaces), node[1], node[2])
                continue
            child = _json_tree(value, namespaces)
            key = _replace_namespace(key, namespaces)
            if isinstance(value, list):
                for element in child[2]:
                    node[2].append((key, element[1], element[2]))
            else:
                node[2].append((key, child[1], child[2]))
    else:
        text = _replace_namespace(obj, namespaces, value=True) if isinstance(obj, str) else obj
        return ("", _json_scalar(text), [])
    if not any(k in obj for k in _PAIRED):
        node[2].sort(key=_sort_key)
    else:
        # A (type, value) pair reads type first whatever the JSON key order (which means
        # nothing in JSON); a stable sort keeps the rest as written.
        node[2].sort(key=lambda child: child[0] != "type")
    return node


def _sort_key(node: Node) -> Any:
    # Tuples compare element-wise; the name of a node is a str, text a str, children a list.
    return node


def _correct_structure(node: Node) -> Node:
    """Reshape a JSON-LD tree into the shape the XML form of the same event has."""
    children: list[Node] = list(node[2]) if len(node) > 2 else []
    lists: dict[str, list[Node]] = {}
    for element in [e for e in children if isinstance(e[0], str) and e[0].endswith("List")]:
        lists.setdefault(element[0], []).append((element[0][:-4], element[1], element[2]))
        children.remove(element)
    for list_name, elements in lists.items():
        if list_name in _PAIRED_LISTS:
            # (type, value) pairs; an entry without a type is a group of its value alone.
            children.append((list_name, "", [tuple(e[2][:2]) for e in elements]))
        else:
            children.append((list_name, "", elements))
    child_epcs: list[Node] = [("epc", e[1], []) for e in children if e[0] == "childEPCs"]
    children = [e for e in children if e[0] != "childEPCs"]
    if child_epcs:
        children.append(("childEPCs", "", child_epcs))
    corrected = [e if e[0] in _PAIRED_LISTS else _correct_structure(e) for e in children]
    name, text = node[0], node[1]
    if name in ("inputEPC", "outputEPC"):
        return ("epc", text, corrected)
    if name in ("inputQuantity", "outputQuantity", "childQuantity") or (
        name == "quantity" and corrected
    ):
        return ("quantityElement", text, corrected)
    return (name, text, corrected)


# --- XML -----------------------------------------------------------------------------------


def _xml_events(text: str) -> list[Node]:
    for tag in ("<extension>", "</extension>", "<baseExtension>", "</baseExtension>"):
        text = text.replace(tag, "")
    try:
        # The stdlib parser with expat >= 2.4.1 refuses entity-expansion bombs and
        # never fetches external entities.
        root = ElementTree.fromstring(text)  # noqa: S314
    except ElementTree.ParseError as exc:
        raise EpcisDocumentError(f"not well-formed XML: {exc}") from exc
    event_list = root.find("*/EventList")
    if event_list is None:
        event_list = root.find("*/*/*/EventList")  # EPCISQueryDocument: body/results/body
    if event_list is None:
        raise EpcisDocumentError("no EventList in the XML document")
    if len(event_list) == 0:
        return []
    ignored = {
        child.tag
        for element in root.iter()
        if element.tag.rpartition("}")[2] == "ignoreFields"
        for child in element
    }
    tree = _expand_xml_prefixes(_xml_tree(event_list, sort=False))
    return [_without(event, ignored) for event in tree[2]]


def _xml_tree(element: ElementTree.Element, *, sort: bool = True) -> Node:
    children: list[Any] = [(k, v, []) for k, v in element.items()]
    children += [_xml_tree(child) for child in element]
    if sort:
        children.sort()
    paired: list[Any] = [(*c[2][:1], (c[0], c[1], [])) for c in children if c[0] in _PAIRED]
    if paired:
        children = paired
    return (element.tag, (element.text or "").strip(), children)


def _expand_xml_prefixes(node: Node) -> Node:
    if isinstance(node[0], tuple):
        # A (type, value) pair: only the type is a vocabulary value.
        return tuple(
            (c[0], _expand_prefix(c[1]), c[2]) if isinstance(c, tuple) and c[0] == "type" else c
            for c in node
        )
    return (node[0], _expand_prefix(node[1]), [_expand_xml_prefixes(c) for c in node[2]])


def _expand_prefix(text: str) -> str:
    for prefix, iri in _XML_PREFIXES:
        if str(text).startswith(prefix):
            text = str(text).replace(prefix, iri)
    return text


# --- the pre-hash string -------------------------------------------------------------------


def _event_prehash(event: Node) -> str:
    children = _deep_copy(event[2])
    ordered = _in_order(children, PROPERTY_ORDER)
    rest = [c for c in children if c[0] not in _IGNORED]
    return "eventType=" + str(event[0]) + ordered + (_generic(rest) if rest else "")


def _deep_copy(children: list[Any]) -> list[Any]:
    return [(c[0], c[1], _deep_copy(c[2])) if len(c) == 3 else tuple(c) for c in children]


def _in_order(children: list[Any], order: Order) -> str:
    """The pre-hash of the properties ``order`` names; consumed properties leave ``children``."""
    prehash = ""
    extensions = _user_extensions(children)
    named: dict[str, list[Any]] = {}
    for child in children:
        if isinstance(child[0], str):
            named.setdefault(child[0], []).append(child)
    for name, sub_order in order:
        values = []
        for child in named.get(name, ()):
            text = _child_prehash(child, sub_order)
            if text:
                values.append(text)
            if len(child[2]) == 0:
                children.remove(child)
        values.sort()
        if "".join(values):
            prehash = "".join([prehash, *values])
    if extensions:
        prehash += _generic(extensions)
    return prehash


def _child_prehash(child: Node, sub_order: Order | None) -> str:
    nested = _in_order(child[2], sub_order) if sub_order else ""
    text = ""
    if child[1]:
        text = str(child[1]).strip()
        name = str(child[0]).lower()
        text = _timestamp(text) if "time" in name and "offset" not in name else _canonical(text)
        if text:
            text = "=" + text
    if text or nested:
        return str(child[0]) + text + nested
    return ""


def _user_extensions(children: list[Any]) -> list[Any]:
    """Take user extensions nested in a standard property out, to append them to it."""
    if len(children) <= 1:
        return []
    if any("eventTime" in c[0] or "action" in c[0] for c in children):
        return []
    found = [c for c in children if isinstance(c[0], str) and "{" in c[0] and "/}" in c[0]]
    for extension in found:
        children.remove(extension)
    return found


def _generic(children: Sequence[Any]) -> str:
    """The pre-hash of properties outside the canonical order (extensions, ilmd...)."""
    values = []
    for child in children:
        if isinstance(child[0], tuple):
            values.append(_generic(child))
            continue
        text = str(child[1]).strip()
        if text:
            text = "=" + _canonical(text)
        values.append(str(child[0]) + text + _generic(child[2]))
    if len(children) > 1 and not any(c[0] in _PAIRED for c in children):
        values.sort()
    return "".join(values)


@functools.lru_cache(maxsize=16_384)
def _canonical(text: str) -> str:
    # Memoised: documents repeat their vocabulary, locations and dates event after event.
    for old, new in _OLD_CBV_URNS:
        text = text.replace(old, new)
    text = _numeric(text)
    return normalise(text) or text


def _numeric(text: str) -> str:
    try:
        number = float(text)
    except ValueError:
        return text
    try:
        if int(number) == number:
            return str(int(number))
    except (ValueError, OverflowError):
        return text
    return str(number)


def _timestamp(text: str) -> str:
    """UTC at millisecond precision with a ``Z``, rounding the microseconds."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    rounded = round(moment.microsecond, -3)
    moment = moment.replace(microsecond=0) + timedelta(microseconds=rounded)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"
