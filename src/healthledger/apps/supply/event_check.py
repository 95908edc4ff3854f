"""``healthledger supply check``: a stored event checked against its anchor, offline.

Opens a node's data folder without starting it, finds the event in the read model
by its event hash or its EPCIS ``eventID``, and runs the same check as
``GET /api/v1/supply/events/check``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from healthledger.apps.supply.capture_step import EVENT_HASH
from healthledger.apps.supply.contract import SupplyContract
from healthledger.apps.supply.event_store import STORE_FILE, EventStore, check_event
from healthledger.contracts.errors import InvalidArguments
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.errors import HealthledgerError
from healthledger.ledger.errors import LedgerError
from healthledger.node.seam import AppNode, NodeError, opened_ledger


class StoredEventError(HealthledgerError):
    """The check cannot be run: no such folder, store or event."""


def check_stored_event(data: Path, event: str) -> dict[str, Any]:
    """The check of the stored event ``event`` (hash or eventID) in the node at ``data``."""
    try:
        with opened_ledger(
            data,
            name="supply",
            namespaces=(SupplyContract.name,),
            contracts=(*SYSTEM_CONTRACTS, SupplyContract),
        ) as node:
            return _check_in(node, event)
    except NodeError as exc:
        raise StoredEventError(str(exc)) from exc
    except (OSError, ValueError, KeyError, TypeError, LedgerError) as exc:
        raise StoredEventError(f"cannot open the node in {data}: {exc}") from exc


def _check_in(node: AppNode, event: str) -> dict[str, Any]:
    path = node.folder / STORE_FILE
    if not path.is_file():
        raise StoredEventError(f"{node.data_dir} holds no supply event store ({path})")
    store = EventStore(path)
    try:
        event_hash = event
        if not EVENT_HASH.match(event):
            found = store.by_event_id(event)
            if found is None:
                raise StoredEventError(f"no stored event has the hash or eventID {event!r}")
            event_hash = found.event_hash
        try:
            return check_event(node, store, event_hash)
        except InvalidArguments as exc:
            raise StoredEventError(str(exc)) from exc
    finally:
        store.close()


def describe_check(report: dict[str, Any]) -> Iterator[str]:
    """The check as lines for a person."""
    yield f"verdict: {report['verdict']}"
    yield f"event hash: {report['event_hash']}"
    yield f"recomputed: {report['recomputed_hash']}"
    anchor, proof = report.get("anchor"), report.get("proof")
    if anchor is not None:
        state = "accepted" if anchor.get("accepted") else f"refused ({anchor.get('reason')})"
        yield f"anchor: {anchor['op']} by {anchor['by']}, {state}, transaction {anchor['tx_id']}"
    if proof is not None:
        yield (
            f"inclusion proof: block {proof['height']}, log entry {proof['leafIdx']} of "
            f"{proof['treeSize']}, root {proof['root']} ({len(proof['proof'])} hashes, verified)"
        )
