"""Read-side queries of the supply application: where a lot is, what a container holds,
and an EPCIS 2.0 query subset answered as an ``EPCISQueryDocument``."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from healthledger.apps.supply.event_store import EventQuery, EventStore
from healthledger.apps.supply.verification import PublicLedger, today_of
from healthledger.contracts.errors import InvalidArguments

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
MAX_DEPTH = 4


def lot_whereabouts(ledger: PublicLedger, gtin: str, lot: str) -> dict[str, Any]:
    """Where the units of a lot are now: each unit's custodian, location, lifecycle
    ``state`` and ``status`` (the vocabulary of :mod:`standing`, with the recall reaching
    it), and counts by (custodian, location, state, status)."""
    today = today_of(ledger.node)
    units = []
    for _, record in ledger.range(f"unit/01/{gtin}/21/"):
        if record.get("lot") != lot:
            continue
        stands = ledger.standing(record, today=today)
        units.append(
            {k: record.get(k) for k in ("unit", "custodian", "location", "parent")}
            | {"quarantined": bool(record.get("quarantined"))}
            | stands
        )
    places = Counter((u["custodian"], u["location"], u["state"], u["status"]) for u in units)
    recalls = {u["recall"]["id"]: u["recall"] for u in units if u["recall"]}
    return {
        "gtin": gtin,
        "lot": lot,
        "units": units,
        "recalls": list(recalls.values()),
        "places": [
            {"custodian": c, "location": loc, "state": state, "status": s, "units": n}
            for (c, loc, state, s), n in sorted(places.items(), key=lambda p: (-p[1], str(p[0])))
        ],
    }


def container_contents(ledger: PublicLedger, unit: str) -> dict[str, Any]:
    """What a case or pallet holds now, as a tree (children of children ...)."""
    record = ledger.get(f"unit/{unit}")
    if record is None:
        raise InvalidArguments(
            f"no unit {unit}", [{"field": "unit", "message": "never commissioned or packed"}]
        )

    def tree(of: dict[str, Any], depth: int) -> dict[str, Any]:
        children = []
        if depth < MAX_DEPTH:
            for child in of.get("children") or []:
                found = ledger.get(f"unit/{child}")
                if found is not None:
                    children.append(tree(found, depth + 1))
        stands = ledger.standing(of, today=today)
        return {
            "unit": of["unit"],
            "lot": of.get("lot"),
            "status": stands["status"],
            "state": stands["state"],
            "children": children,
        }

    today = today_of(ledger.node)
    contents = tree(record, 0)
    return {"container": contents, "units": _count_leaves(contents)}


def _count_leaves(node: dict[str, Any]) -> int:
    if not node["children"]:
        return 1
    return sum(_count_leaves(c) for c in node["children"])


def epcis_query_document(
    store: EventStore, query: EventQuery, *, creation_date: str
) -> dict[str, Any]:
    """The events matching ``query`` as an EPCIS 2.0 JSON-LD ``EPCISQueryDocument``
    (``SimpleEventQuery``); each event carries its event hash as ``eventID``."""
    found = store.query(query)
    contexts: list[Any] = [EPCIS_CONTEXT]
    seen = {json.dumps(EPCIS_CONTEXT)}
    events = []
    for stored in found:
        context = stored.context if isinstance(stored.context, list) else [stored.context]
        for entry in context:
            key = json.dumps(entry, sort_keys=True)
            if entry is not None and key not in seen:
                seen.add(key)
                contexts.append(entry)
        events.append({"eventID": stored.event_hash, **stored.event})
    return {
        "@context": contexts,
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": creation_date,
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "resultsBody": {"eventList": events},
            }
        },
    }
