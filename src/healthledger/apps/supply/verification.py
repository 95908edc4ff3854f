"""Public verification of a pack by its GS1 Digital Link URI (API and public page alike).

Reads committed state of the supply namespace straight from the peer: no identity,
no contract query, nothing signed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from healthledger.appkit.readable import celsius, plural_words, sscc
from healthledger.apps.supply.aggregation import anchor_key, trail_entry, trail_key
from healthledger.apps.supply.digital_link import DigitalLinkError, PackLink, parse_pack_link
from healthledger.apps.supply.standing import standing
from healthledger.contracts.errors import InvalidArguments
from healthledger.contracts.system.prefixes import company_digits, prefix_of
from healthledger.node.seam import AppNode

CONTRACT = "supply"
_UNIT = re.compile(r"\b01/(\d{14})/21/([\x21-\x7e]{1,20}?)(?=[\s:,;)]|$)")
_CASE = re.compile(r"\b00/(\d{18})\b")
_GLN = re.compile(r"\bGLN (\d{13})\b")
_TENTHS = re.compile(r"(-?\d+)\.\.(-?\d+) \(0\.1 C\)")
"""Readings as the contract's alerts record them: tenths of a degree."""


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
    "reason",
)


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

    def sscc(self, unit: str) -> str:
        """A logistic unit (``00/<sscc>`` or its 18 digits) by its SSCC as people read it,
        grouped at the company prefix of the member holding it (``readable.sscc``):
        the one way every supply page and message names a case or a pallet."""
        digits = unit.removeprefix("00/")
        # an SSCC's extension digit stands where a GTIN's indicator digit does: the
        # company prefix follows it, and its holder is the member brand_owner finds
        owner = self.brand_owner(digits) if len(digits) == 18 else None
        return sscc(digits, None if owner is None else owner["prefix"])

    def trail(self, unit: str) -> list[Any]:
        """The events that touched ``unit``, oldest first (each with ``via``: the container
        named in the event through which it reached the unit, or None)."""
        prefix = trail_key(unit)
        return [
            trail_entry(v, self.get(anchor_key(v["event_hash"])))
            for _, v in self.node.range(prefix, limit=1000)
        ]

    def recorded_at(self, key: str) -> tuple[int, str] | None:
        """When ``key`` was last written: (ledger time in ms, transaction id), or None."""
        found = self.node.history(key, limit=1)
        return None if not found else (found[0].timestamp, found[0].tx_id)

    def org_name(self, org: str | None) -> str:
        """A member's name (its id if it is not a member)."""
        if not org:
            return ""
        record = self.node.organisation(org)
        return str(record.get("name", org)) if record else org

    def place_name(self, gln: str | None) -> str | None:
        """The registered name of a GLN, or None."""
        record = self.get(f"location/{gln}") if gln else None
        return None if record is None else str(record.get("name") or "") or None

    def standing(self, record: Any, *, today: str, link: PackLink | None = None) -> dict[str, Any]:
        """The unit's ``{status, state, recall}`` (:func:`standing.standing`); with the
        ``link`` read from a pack, a record of another lot is "unknown"."""
        if record is not None and link is not None and record.get("lot") != link.lot:
            record = None
        expiry = None if link is None else link.expiry_date().isoformat()
        return standing(self, record, today=today, expiry=expiry)


def in_words(text: str, ledger: PublicLedger) -> str:
    """A contract's message with names before codes: packs by product and serial,
    cases by their SSCC as people read it, places by name, members by name, and counts
    in words (``1 unit``, not ``1 unit(s)``)."""

    def pack(match: re.Match[str]) -> str:
        product = ledger.get(f"product/{match[1]}") or {}
        return f"pack {match[2]} of {product.get('name', 'GTIN ' + match[1])}"

    text = _UNIT.sub(pack, plural_words(text))
    text = _TENTHS.sub(lambda m: f"{celsius(int(m[1]))} to {celsius(int(m[2]))}", text)
    text = _CASE.sub(lambda m: f"case {ledger.sscc(m[1])}", text)
    text = _GLN.sub(
        lambda m: f"{ledger.place_name(m[1]) or 'an unregistered place'} (GLN {m[1]})", text
    )
    for member in ledger.node.organisations():
        text = re.sub(rf"\b{re.escape(member['id'])}\b(?!/)", member["name"], text)
    return text


def today_of(node: AppNode) -> str:
    """The ledger clock's UTC day, ``YYYY-MM-DD`` (what expiry is judged against)."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=node.clock())
    return moment.date().isoformat()


def parse_link(uri: str) -> PackLink:
    """The pack link of ``uri``; InvalidArguments (a 422 answer) says what is wrong."""
    try:
        return parse_pack_link(uri)
    except DigitalLinkError as exc:
        raise InvalidArguments(
            f"not a pack's GS1 Digital Link URI: {exc}", [{"field": "uri", "message": str(exc)}]
        ) from exc


def verify_pack(node: AppNode, uri: str) -> dict[str, Any]:
    """Status (the one vocabulary of :mod:`standing`) with its reason and what to do, the
    recall reaching the pack, provenance trail, temperature excursions against the
    product's range and the inclusion proof of the unit's latest event."""
    ledger = PublicLedger(node)
    link = parse_link(uri)
    record = ledger.get(f"unit/{link.unit}")
    stands = ledger.standing(record, today=today_of(node), link=link)
    if stands["status"] == "unknown":
        record = None  # a serial of another lot tells nothing of this pack
    answer: dict[str, Any] = {
        "uri": link.uri(),
        "gtin": link.gtin,
        "lot": link.lot,
        "serial": link.serial,
        "expiry": link.expiry_date().isoformat(),
        **stands,
        "reason": None,
        "advice": None,
        "brand_owner": None,
        "product": None,
        "trail": [],
        "excursions": [],
        "dispensed_at": None,
        "proof": None,
    }
    product = None if record is None else ledger.get(f"product/{link.gtin}")
    owner = None if record is None else ledger.brand_owner(link.gtin)
    answer["brand_owner"] = owner
    if record is not None and (
        product is None or owner is None or product["maker"] != owner["org"]
    ):
        # Registered by someone who does not hold the GTIN's company prefix (possible
        # only on a ledger from before the contract checked it): never genuine.
        answer.update(status="unknown", state=None, recall=None)
        answer["reason"] = (
            f"GTIN {link.gtin} was not registered by the holder of its GS1 company prefix"
        )
        answer["advice"] = words(answer)[1]
        return answer
    if record is not None and product is not None:
        answer["product"] = {
            k: product[k] for k in ("name", "dosage_form", "maker", "temp_min_dc", "temp_max_dc")
        } | {"maker_name": ledger.org_name(product["maker"])}
        trail = [{k: t.get(k) for k in _TRAIL_FIELDS} for t in ledger.trail(link.unit)]
        for entry in trail:
            entry["org_name"] = ledger.org_name(entry.get("org"))
            entry["place_name"] = ledger.place_name(
                entry.get("location") or entry.get("destination")
            )
            entry["excursion"] = outside(entry.get("temperature_range_dc"), product)
            entry["reason"] = None if entry["accepted"] else in_words(str(entry["reason"]), ledger)
        answer["trail"] = trail
        answer["excursions"] = [t for t in trail if t["excursion"]]
        if record.get("last_tx"):
            answer["proof"] = node.inclusion_proof(record["last_tx"])
    answer["reason"], answer["advice"] = words(answer)
    handed = [t for t in answer["trail"] if t["op"] == "dispense" and t["accepted"]]
    answer["dispensed_at"] = handed[-1]["at"] if handed else None
    return answer


def outside(readings: Any, product: dict[str, Any]) -> bool:
    """A trail entry's temperature range (tenths of a degree) leaves the product's range."""
    if not readings:
        return False
    low, high = readings
    return bool(low < product["temp_min_dc"] or high > product["temp_max_dc"])


def words(answer: dict[str, Any]) -> tuple[str, str]:
    """The verdict's reason and what to do, for a pharmacist and a patient alike."""
    status = answer["status"]
    product = answer.get("product") or {}
    maker = product.get("maker_name") or "its maker"
    handed = [t for t in answer["trail"] if t["op"] == "dispense" and t["accepted"]]
    last = handed[-1] if handed else {}
    if status == "unknown":
        reason = answer.get("reason") or (
            f"No pack with serial {answer['serial']} of lot {answer['lot']} was ever made "
            "under this product code."
        )
        return reason, (
            "Do not use, sell or dispense it: it may be counterfeit. Keep the pack and "
            "report it to the Medical Products Administration."
        )
    if status == "recalled":
        recall = answer["recall"] or {}
        return f"Recalled: {recall.get('reason', 'no reason recorded')}.", (
            "Do not use it. Patients: take it back to the pharmacy or clinic that gave it to "
            "you. Pharmacists: do not dispense it; set it aside for return to the maker."
        )
    if status == "dispensed":
        by = last.get("org_name") or "a pharmacy or clinic"
        return f"Already dispensed by {by}.", (
            "If you have just been given it, this is as expected. If it is offered for sale "
            "as new, do not buy or dispense it and report it to the Medical Products "
            "Administration."
        )
    if status == "destroyed":
        return "This pack was destroyed and should no longer exist.", (
            "Do not use, sell or dispense it; report where you found it to the Medical "
            "Products Administration."
        )
    if status == "expired":
        return f"Expired on {answer['expiry']}.", (
            "Do not use it; take it to a pharmacy for safe disposal."
        )
    range_text = ""
    if product:
        range_text = (
            f" (storage {celsius(product['temp_min_dc'])} to {celsius(product['temp_max_dc'])})"
        )
    if status == "quarantined":
        seen = answer["excursions"][-1]["temperature_range_dc"] if answer["excursions"] else None
        readings = f": readings {celsius(seen[0])} to {celsius(seen[1])}" if seen else ""
        return f"Held in quarantine after a cold-chain excursion{readings}{range_text}.", (
            f"Do not dispense or use it until {maker} releases it."
        )
    return f"Made by {maker}, registered on the ledger, not recalled.", (
        "Pharmacists may dispense it. Patients: use it as directed before the expiry date."
    )
