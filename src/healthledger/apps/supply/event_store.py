"""The off-chain read model of captured EPCIS events (SQLite, in the node's data folder).

The chain holds each event's anchor (its CBV 2.0 event hash and custody effect);
this store holds the event documents themselves, indexed for queries by EPC,
bizStep and time. It is derived data: :meth:`EventStore.rebuild` re-derives the
index from the stored documents and the chain's anchors, dropping any document
no anchor vouches for. :func:`check_event` recomputes a stored event's hash and
compares it with its anchor and the anchoring transaction's inclusion proof.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from healthledger.apps.supply.aggregation import anchor_key
from healthledger.apps.supply.digital_link import normalise
from healthledger.apps.supply.event_hash import (
    EpcisDocumentError,
    hash_of_prehash,
    prehash_of_json_event,
)
from healthledger.apps.supply.verification import PublicLedger
from healthledger.contracts.errors import InvalidArguments
from healthledger.node.seam import AppNode

STORE_FILE = "events.sqlite"
"""Where the read model lives, in the application's folder."""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_hash TEXT NOT NULL UNIQUE,
    tx_id TEXT NOT NULL,
    type TEXT NOT NULL,
    biz_step TEXT,
    event_time_ms INTEGER,
    context TEXT NOT NULL,
    event TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS event_epcs (epc TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS event_epcs_by_epc ON event_epcs (epc, seq);
CREATE INDEX IF NOT EXISTS events_by_step ON events (biz_step, seq);
CREATE INDEX IF NOT EXISTS events_by_time ON events (event_time_ms);
"""
_EPC_FIELDS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")


@dataclass(frozen=True)
class StoredEvent:
    """One captured EPCIS event as the read model holds it."""

    event_hash: str
    """The CBV 2.0 event hash it was anchored under."""
    tx_id: str
    """The transaction that anchored it."""
    context: Any
    """The ``@context`` of the document it came in (needed to recompute the hash)."""
    event: dict[str, Any]
    """The event, exactly as captured."""


@dataclass(frozen=True)
class EventQuery:
    """An EPCIS 2.0 query subset: every given condition must hold."""

    epc: str | None = None
    """An EPC (URN or Digital Link) in the event's EPC lists or parentID."""
    biz_step: str | None = None
    """A CBV bizStep (``shipping``, or its full URI)."""
    ge_event_time_ms: int | None = None
    lt_event_time_ms: int | None = None
    limit: int = 100


def epc_key(epc: str) -> str:
    """The form EPCs are indexed under: the canonical Digital Link, else the text itself."""
    return normalise(epc) or epc


def biz_step_name(raw: Any) -> str | None:
    """The bare CBV bizStep name (``shipping``) of a bare, prefixed or URI bizStep."""
    if not isinstance(raw, str) or not raw:
        return None
    for marker in ("BizStep-", "bizstep:"):
        if marker in raw:
            return raw.rsplit(marker, 1)[1]
    return raw


def event_time_ms(raw: Any) -> int | None:
    """An EPCIS ``eventTime`` as milliseconds since the epoch, or None if it is not one."""
    if not isinstance(raw, str):
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return int(moment.timestamp() * 1000)


def recompute_hash(context: Any, event: dict[str, Any]) -> str:
    """The CBV 2.0 event hash of ``event`` read with the document's ``context``."""
    return hash_of_prehash(prehash_of_json_event(event, context))


class EventStore:
    """Captured EPCIS events, off chain, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def of(cls, node: AppNode) -> EventStore:
        """The store in the application's folder of ``node``."""
        node.folder.mkdir(parents=True, exist_ok=True)
        return cls(node.folder / STORE_FILE)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    def add(self, tx_id: str, context: Any, events: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Keep the ``(event_hash, event)`` pairs a committed transaction anchored."""
        ctx = json.dumps(context)
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for event_hash, event in events:
                    self._insert(tx_id, ctx, event_hash, event)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _insert(self, tx_id: str, ctx: str, event_hash: str, event: dict[str, Any]) -> None:
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO events"
            " (event_hash, tx_id, type, biz_step, event_time_ms, context, event)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                event_hash,
                tx_id,
                str(event.get("type", "")),
                biz_step_name(event.get("bizStep")),
                event_time_ms(event.get("eventTime")),
                ctx,
                json.dumps(event),
            ),
        )
        if cursor.rowcount != 1:
            return
        seq = cursor.lastrowid
        epcs = {epc_key(str(e)) for f in _EPC_FIELDS for e in event.get(f) or []}
        if event.get("parentID"):
            epcs.add(epc_key(str(event["parentID"])))
        self._db.executemany(
            "INSERT INTO event_epcs (epc, seq) VALUES (?, ?)", [(e, seq) for e in sorted(epcs)]
        )

    def get(self, event_hash: str) -> StoredEvent | None:
        """The stored event anchored under ``event_hash``, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT event_hash, tx_id, context, event FROM events WHERE event_hash = ?",
                (event_hash,),
            ).fetchone()
        return None if row is None else _stored(row)

    def by_event_id(self, event_id: str) -> StoredEvent | None:
        """The first stored event whose EPCIS ``eventID`` is ``event_id``, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT event_hash, tx_id, context, event FROM events"
                " WHERE json_extract(event, '$.eventID') = ? ORDER BY seq LIMIT 1",
                (event_id,),
            ).fetchone()
        return None if row is None else _stored(row)

    def count(self) -> int:
        """How many events are stored."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def query(self, query: EventQuery) -> list[StoredEvent]:
        """Stored events matching ``query``, in capture order."""
        clauses: list[str] = []
        params: list[Any] = []
        table = "events e"
        if query.epc is not None:
            table = "event_epcs x JOIN events e ON e.seq = x.seq"
            clauses.append("x.epc = ?")
            params.append(epc_key(query.epc))
        if query.biz_step is not None:
            clauses.append("e.biz_step = ?")
            params.append(biz_step_name(query.biz_step))
        if query.ge_event_time_ms is not None:
            clauses.append("e.event_time_ms >= ?")
            params.append(query.ge_event_time_ms)
        if query.lt_event_time_ms is not None:
            clauses.append("e.event_time_ms < ?")
            params.append(query.lt_event_time_ms)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = (
            f"SELECT e.event_hash, e.tx_id, e.context, e.event FROM {table}{where}"  # noqa: S608
            " ORDER BY e.seq LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(sql, (*params, max(1, min(query.limit, 10_000)))).fetchall()
        return [_stored(r) for r in rows]

    def all(self) -> Iterator[StoredEvent]:
        """Every stored event, in capture order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT event_hash, tx_id, context, event FROM events ORDER BY seq"
            ).fetchall()
        for row in rows:
            yield _stored(row)

    def rebuild(self, ledger: PublicLedger) -> dict[str, int]:
        """Re-derive the store from its documents and the chain's anchors: a document no
        anchor vouches for is dropped; the EPC index is rebuilt. Returns counts."""
        kept: list[StoredEvent] = []
        dropped = 0
        for stored in self.all():
            anchor = ledger.get(anchor_key(stored.event_hash))
            if anchor is None:
                dropped += 1
                continue
            kept.append(
                StoredEvent(stored.event_hash, anchor["tx_id"], stored.context, stored.event)
            )
        anchors = sum(1 for _ in ledger.range("anchor/"))
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM event_epcs")
            self._db.execute("DELETE FROM events")
            for stored in kept:
                ctx = json.dumps(stored.context)
                self._insert(stored.tx_id, ctx, stored.event_hash, stored.event)
            self._db.execute("COMMIT")
        return {
            "kept": len(kept),
            "dropped": dropped,
            "anchors_without_document": anchors - len(kept),
        }


def _stored(row: tuple[str, str, str, str]) -> StoredEvent:
    return StoredEvent(row[0], row[1], json.loads(row[2]), json.loads(row[3]))


def check_event(node: AppNode, store: EventStore, event_hash: str) -> dict[str, Any]:
    """Recompute the hash of a stored event and compare it with its on-chain anchor and
    the anchoring transaction's inclusion proof. ``verdict``: ``intact`` when all hold,
    ``tampered`` when the document no longer hashes to its anchor, ``unanchored`` when
    the chain has no anchor for it."""
    stored = store.get(event_hash)
    if stored is None:
        raise InvalidArguments(
            f"no stored event {event_hash}",
            [{"field": "event_hash", "message": "not in this node's event store"}],
        )
    try:
        recomputed: str | None = recompute_hash(stored.context, stored.event)
    except EpcisDocumentError:
        recomputed = None
    ledger = PublicLedger(node)
    anchor = ledger.get(anchor_key(event_hash))
    proof = None
    if anchor is not None:
        proof = node.inclusion_proof(anchor["tx_id"])
    if anchor is None:
        verdict = "unanchored"
    elif recomputed != anchor["event_hash"] or anchor["tx_id"] != stored.tx_id:
        verdict = "tampered"
    else:
        verdict = "intact"
    return {
        "event_hash": event_hash,
        "recomputed_hash": recomputed,
        "verdict": verdict,
        "anchor": anchor,
        "proof": proof,
    }
