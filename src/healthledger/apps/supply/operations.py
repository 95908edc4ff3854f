"""The day's supply operations as EPCIS 2.0 documents: what a console form captures.

Commission, pack, ship, receive, dispense and destroy are each one EPCIS event in a
document captured through :class:`~healthledger.apps.supply.service.CaptureService`,
exactly as ``POST /api/v1/supply/capture`` captures a document a client sends: the
form builds the document a client would have sent. Identifiers are GS1 Digital Link
URIs (``https://id.gs1.org/01/<gtin>/21/<serial>``, ``/00/<sscc>``, ``/414/<gln>``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from healthledger.apps.supply.digital_link import check_digit
from healthledger.contracts.errors import InvalidArguments
from healthledger.contracts.system.prefixes import prefix_of

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
ID = "https://id.gs1.org/"
EVENT_ZONE = timezone(timedelta(hours=8), "+08:00")
"""The zone events are stamped in (the demo consortium is in Guangdong, UTC+08:00)."""
MAX_PACKS = 200
"""Most packs one commissioning form makes."""
_AI = re.compile(r"^[A-Za-z0-9!\"%&'()*+,\-./:;<=>?_]{1,20}$")


def pack_epc(unit: str) -> str:
    """The Digital Link URI of a unit id (``01/<gtin>/21/<serial>`` or ``00/<sscc>``)."""
    return ID + unit


def place(gln: str) -> dict[str, str]:
    """A readPoint or bizLocation: the GLN as Digital Link."""
    return {"id": f"{ID}414/{gln}"}


def stamp(at_ms: int) -> str:
    """A ledger time as an EPCIS ``eventTime`` in the consortium's zone."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=at_ms)
    return moment.astimezone(EVENT_ZONE).isoformat(timespec="milliseconds")


def document(at_ms: int, *events: dict[str, Any]) -> dict[str, Any]:
    """An EPCISDocument holding ``events``."""
    return {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": stamp(at_ms),
        "epcisBody": {"eventList": list(events)},
    }


def object_event(
    biz_step: str, units: list[str], gln: str, at_ms: int, **extra: Any
) -> dict[str, Any]:
    """One ObjectEvent about ``units`` at ``gln``."""
    return {
        "type": "ObjectEvent",
        "eventTime": stamp(at_ms),
        "eventTimeZoneOffset": EVENT_ZONE.tzname(None),
        "epcList": [pack_epc(u) for u in units],
        "action": "ADD" if biz_step == "commissioning" else "OBSERVE",
        "bizStep": biz_step,
        "readPoint": place(gln),
        **extra,
    }


def _bad(field: str, message: str) -> InvalidArguments:
    return InvalidArguments(message, [{"field": field, "message": message}])


def commissioning(
    *, gtin: str, lot: str, expiry: str, count: int, gln: str, at_ms: int
) -> dict[str, Any]:
    """Commission ``count`` packs of ``gtin`` in ``lot`` at ``gln``: serials are the lot
    and a running number (``<lot>-001`` ...), so a lot's packs are easy to read."""
    lot = lot.strip()
    if not _AI.match(lot) or len(lot) > 16:
        raise _bad("lot", "a lot is 1 to 16 letters, digits or GS1 signs (no spaces)")
    if not 1 <= count <= MAX_PACKS:
        raise _bad("count", f"commission 1 to {MAX_PACKS} packs at a time")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", expiry):
        raise _bad("expiry", "the expiry is a date (YYYY-MM-DD)")
    units = [f"01/{gtin}/21/{lot}-{n:03d}" for n in range(1, count + 1)]
    event = object_event(
        "commissioning",
        units,
        gln,
        at_ms,
        ilmd={"cbvmda:lotNumber": lot, "cbvmda:itemExpirationDate": expiry},
    )
    return document(at_ms, event)


def case_sscc(prefixes: list[str], taken: int, at_ms: int) -> str:
    """A new SSCC inside the organisation's first GS1 company prefix (extension digit 1:
    the console's cases; the simulator's use 0), numbered by time and ``taken``."""
    if not prefixes:
        raise _bad("case", "your organisation holds no GS1 company prefix to number a case")
    prefix = prefixes[0]
    width = 16 - len(prefix)
    serial = (at_ms // 10 + taken) % 10**width
    body = f"1{prefix}{serial:0{width}d}"
    return body + str(check_digit(body))


def packing(*, units: list[str], sscc: str, gln: str, at_ms: int) -> dict[str, Any]:
    """Pack ``units`` into a new case ``sscc`` at ``gln``."""
    if not units:
        raise _bad("units", "choose the packs to put in the case")
    event = {
        "type": "AggregationEvent",
        "eventTime": stamp(at_ms),
        "eventTimeZoneOffset": EVENT_ZONE.tzname(None),
        "parentID": pack_epc(f"00/{sscc}"),
        "childEPCs": [pack_epc(u) for u in units],
        "action": "ADD",
        "bizStep": "packing",
        "readPoint": place(gln),
    }
    return document(at_ms, event)


def shipping(*, unit: str, gln: str, destination: str, at_ms: int) -> dict[str, Any]:
    """Ship ``unit`` (a pack or a case) from ``gln`` to ``destination``."""
    event = object_event(
        "shipping",
        [unit],
        gln,
        at_ms,
        destinationList=[{"type": "location", "destination": f"{ID}414/{destination}"}],
    )
    return document(at_ms, event)


def receiving(*, unit: str, gln: str, at_ms: int, unpack: bool) -> dict[str, Any]:
    """Receive ``unit`` at ``gln``; a case is also unpacked so its packs can be sold."""
    events = [object_event("receiving", [unit], gln, at_ms)]
    if unpack:
        events.append(
            {
                "type": "AggregationEvent",
                "eventTime": stamp(at_ms),
                "eventTimeZoneOffset": EVENT_ZONE.tzname(None),
                "parentID": pack_epc(unit),
                "childEPCs": [],
                "action": "DELETE",
                "bizStep": "unpacking",
                "readPoint": place(gln),
            }
        )
    return document(at_ms, *events)


def dispensing(*, unit: str, gln: str, at_ms: int) -> dict[str, Any]:
    """Dispense one pack at ``gln``."""
    return document(at_ms, object_event("dispensing", [unit], gln, at_ms))


def destroying(*, unit: str, gln: str, at_ms: int) -> dict[str, Any]:
    """Destroy a pack held at ``gln`` (a recalled pack, by whoever holds it)."""
    return document(at_ms, object_event("destroying", [unit], gln, at_ms))


def own_gln(gln: str, prefixes: list[str]) -> bool:
    """``gln`` lies inside one of the organisation's GS1 company prefixes."""
    return prefix_of(gln, prefixes) is not None
