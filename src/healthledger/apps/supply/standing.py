"""How a unit stands: the one status vocabulary of the supply application.

The lot trace, the unit trace, public verification and the API all say a unit's
status with the same word from :data:`STATUSES`, decided by :func:`standing` from the
unit's record, its lot's recall and the day: a recalled unit is "recalled"
everywhere, with the recall's date and reason. The unit's place in its lifecycle
(in stock, in transit, dispensed ...) is told beside it as its ``state``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

STATUSES = ("genuine", "unknown", "recalled", "dispensed", "destroyed", "expired", "quarantined")
"""Every status a unit can have, in the order they are decided (the first that holds)."""
RETIRED = {
    "dispensed": "dispensed",
    "administered": "dispensed",
    "consumed": "dispensed",
    "destroyed": "destroyed",
    "decommissioned": "destroyed",
}
"""Lifecycle states after which a unit is out of the supply chain, by status."""
STATES = {
    "active": "in stock",
    "in_transit": "in transit",
    "dispensed": "dispensed",
    "administered": "administered",
    "consumed": "consumed into another product",
    "destroyed": "destroyed",
    "decommissioned": "decommissioned",
}
"""A unit's lifecycle state (its record's ``status``) in words."""

ALERTS = {
    "unknown_serial": "unknown serial: possible counterfeit",
    "dispensed_twice": "pack dispensed twice",
    "unit_in_two_places": "pack seen in two places",
    "recalled_dispensed": "recalled pack offered for dispensing",
    "quarantined_dispensed": "quarantined pack offered for dispensing",
    "expired_sold": "expired pack offered for dispensing",
    "temperature_excursion": "temperature excursion",
}
"""Each kind of supply alert in words."""


class StateReader(Protocol):
    """Committed supply state: what :func:`standing` reads."""

    def get(self, key: str) -> Any:
        """A committed value of the supply namespace, or None."""
        ...

    def recorded_at(self, key: str) -> tuple[int, str] | None:
        """When ``key`` was last written: (ledger time in ms, transaction id), or None."""
        ...

    def org_name(self, org: str | None) -> str:
        """A member's name (its id if it is not a member)."""
        ...


@dataclass(frozen=True)
class RecallNotice:
    """A recall that reaches a unit: which, when, why and by whom."""

    id: str
    reason: str
    at: int | None
    """Ledger time of the recall's transaction (ms since the epoch)."""
    tx_id: str | None
    by: str
    """The identity that recalled (``org/name``)."""
    by_name: str
    """The name of its organisation."""
    scope: str
    """``lot`` (every unit of the lot) or ``units`` (named units of it)."""

    def to_json(self) -> dict[str, Any]:
        """The JSON form the API answers."""
        return {
            "id": self.id,
            "reason": self.reason,
            "at": self.at,
            "tx_id": self.tx_id,
            "by": self.by,
            "by_name": self.by_name,
            "scope": self.scope,
        }


def recall_notice(ledger: StateReader, record: dict[str, Any]) -> RecallNotice | None:
    """The recall that reaches ``record``'s unit (by serial or through its lot), or None."""
    recall_id = record.get("recalled")
    if not recall_id and record.get("gtin"):
        lot = ledger.get(f"recalled_lot/{record['gtin']}/{record.get('lot')}")
        recall_id = None if lot is None else lot.get("recall")
    if not recall_id:
        return None
    found = ledger.get(f"recall/{recall_id}") or {}
    written = ledger.recorded_at(f"recall/{recall_id}")
    return RecallNotice(
        id=str(recall_id),
        reason=str(found.get("reason") or "no reason recorded"),
        at=None if written is None else written[0],
        tx_id=None if written is None else written[1],
        by=str(found.get("by") or ""),
        by_name=ledger.org_name(str(found.get("by") or "").split("/", 1)[0]),
        scope="lot" if found.get("units") is None else "units",
    )


def standing(
    ledger: StateReader, record: dict[str, Any] | None, *, today: str, expiry: str | None = None
) -> dict[str, Any]:
    """``{status, state, recall}`` of a unit: ``status`` from :data:`STATUSES`, ``state``
    its lifecycle in words, ``recall`` the :meth:`RecallNotice.to_json` reaching it or
    None. ``today`` and ``expiry`` (the date printed on the pack, if known) are
    ``YYYY-MM-DD``; a logistic unit (case, pallet) never expires."""
    if record is None:
        return {"status": "unknown", "state": None, "recall": None}
    state = STATES.get(str(record.get("status")), str(record.get("status")))
    recall = recall_notice(ledger, record)
    if recall is not None:
        return {"status": "recalled", "state": state, "recall": recall.to_json()}
    retired = RETIRED.get(str(record.get("status")))
    if retired is not None:
        return {"status": retired, "state": state, "recall": None}
    dates = [d for d in (record.get("expiry"), expiry) if d]
    if dates and min(dates) < today:
        return {"status": "expired", "state": state, "recall": None}
    if record.get("quarantined"):
        return {"status": "quarantined", "state": state, "recall": None}
    return {"status": "genuine", "state": state, "recall": None}
