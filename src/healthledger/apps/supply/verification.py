"""Public verification of a pack by its GS1 Digital Link URI (API and public page alike).

Reads committed state of the supply namespace straight from the peer: no identity,
no contract query, nothing signed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from healthledger.apps.supply.aggregation import anchor_key, trail_entry, trail_key
from healthledger.apps.supply.digital_link import DigitalLinkError, PackLink, parse_pack_link
from healthledger.contracts.errors import InvalidArguments
from healthledger.contracts.system.prefixes import company_digits, prefix_of
from healthledger.node.seam import AppNode

CONTRACT = "supply"
_TRAIL_FIELDS = (
    "op",
    "org",
    "location",
    "destination",
    "at",
    "event_hash",
    "accepted",
    "temperature_range_dc",
    "via",
)
STATUSES = ("genuine", "unknown", "dispensed", "recalled", "expired", "quarantined")


class PublicLedger:
    """The public view of supply state: read straight from the peer's committed state."""

    def __init__(self, node: AppNode) -> None:
        self.node = node

    def get(self, key: str) -> Any:
        """A committed value of the supply namespace, or None."""
        return self.node.get(key)

    def range(self, prefix: str, limit: int = 10_000_000) -> Iterator[tuple[str, Any]]:
        """Committed ``(key, value)`` pairs of the supply namespace under ``prefix``."""
        yield from self.node.range(prefix, limit=limit)

    def brand_owner(self, gtin: str) -> dict[str, str] | None:
        """The member holding the GS1 company prefix of ``gtin`` (``{org, name, prefix}``),
        or None if no member holds it."""
        digits = company_digits(gtin)
        for member in self.node.organisations():
            prefix = prefix_of(digits, member.get("gs1_prefixes", []))
            if prefix is not None:
                return {"org": member["id"], "name": member["name"], "prefix": prefix}
        return None

    def trail(self, unit: str) -> list[Any]:
        """The events that touched ``unit``, oldest first (each with ``via``: the container
        named in the event through which it reached the unit, or None)."""
        prefix = trail_key(unit)
        return [
            trail_entry(v, self.get(anchor_key(v["event_hash"])))
            for _, v in self.node.range(prefix, limit=1000)
        ]

    def status(self, link: PackLink, record: Any, today: str) -> str:
        """genuine | unknown | dispensed | recalled | expired | quarantined."""
        if record is None or record.get("lot") != link.lot:
            return "unknown"
        if record.get("recalled") or self.get(f"recalled_lot/{record['gtin']}/{record['lot']}"):
            return "recalled"
        if record["status"] in (
            "dispensed", "administered", "decommissioned", "destroyed", "consumed",
        ):  # fmt: skip
            return "dispensed"
        if min(record["expiry"], link.expiry_date().isoformat()) < today:
            return "expired"
        if record.get("quarantined"):
            return "quarantined"
        return "genuine"


def _link(uri: str) -> PackLink:
    try:
        return parse_pack_link(uri)
    except DigitalLinkError as exc:
        raise InvalidArguments(
            f"not a pack's GS1 Digital Link URI: {exc}", [{"field": "uri", "message": str(exc)}]
        ) from exc


def parse_link(uri: str) -> PackLink:
    """The pack link of ``uri``; InvalidArguments (a 422 answer) says what is wrong."""
    try:
        return parse_pack_link(uri)
    except DigitalLinkError as exc:
        raise InvalidArguments(
            f"not a pack's GS1 Digital Link URI: {exc}", [{"field": "uri", "message": str(exc)}]
        ) from exc


def verify_pack(node: AppNode, uri: str) -> dict[str, Any]:
    """Status, provenance trail and the inclusion proof of the unit's latest event."""
    ledger = PublicLedger(node)
    link = parse_link(uri)
    record = ledger.get(f"unit/{link.unit}")
    today = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=node.clock())).date()
    status = ledger.status(link, record, today.isoformat())
    answer: dict[str, Any] = {
        "uri": link.uri(),
        "gtin": link.gtin,
        "lot": link.lot,
        "serial": link.serial,
        "expiry": link.expiry_date().isoformat(),
        "status": status,
        "reason": None,
        "brand_owner": None,
        "product": None,
        "trail": [],
        "proof": None,
    }
    if status == "unknown":
        return answer
    product = ledger.get(f"product/{link.gtin}")
    owner = ledger.brand_owner(link.gtin)
    answer["brand_owner"] = owner
    if product is None or owner is None or product["maker"] != owner["org"]:
        # Registered by someone who does not hold the GTIN's company prefix (possible
        # only on a ledger from before the contract checked it): never genuine.
        answer["status"] = "unknown"
        answer["reason"] = (
            f"GTIN {link.gtin} was not registered by the holder of its GS1 company prefix"
        )
        return answer
    answer["product"] = {
        k: product[k] for k in ("name", "dosage_form", "maker", "temp_min_dc", "temp_max_dc")
    }
    answer["trail"] = [{k: t.get(k) for k in _TRAIL_FIELDS} for t in ledger.trail(link.unit)]
    if record.get("last_tx"):
        answer["proof"] = node.inclusion_proof(record["last_tx"])
    return answer
