"""The event stream: block and contract events, followed from any height.

Events are read back from committed blocks, so a consumer that remembers the
last event id it handled resumes exactly there after its own or the node's
restart. An event id is ``height`` for a block event and
``height:tx_index:event_index`` for a contract event.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from healthledger.crypto.canonical import canonical_json_unchecked
from healthledger.crypto.hashing import sha256_hex
from healthledger.ledger.block import BlockHeader
from healthledger.ledger.store import LedgerStore
from healthledger.ledger.transaction import ValidationCode


@dataclass(frozen=True)
class LedgerEvent:
    """One event of the stream."""

    id: str
    kind: str
    """``block`` or ``contract``."""
    height: int
    data: dict[str, Any]


def parse_event_id(text: str) -> tuple[int, int, int]:
    """(height, tx_index, event_index) of an event id; block events sort first (-1, -1)."""
    parts = text.split(":")
    if len(parts) not in (1, 3) or not all(p.isdigit() and len(p) < 16 for p in parts):
        raise ValueError(f"bad event id {text!r}: expected 'H' or 'H:T:E'")
    if len(parts) == 1:
        return int(parts[0]), -1, -1
    return int(parts[0]), int(parts[1]), int(parts[2])


def block_events(stored: bytes) -> list[LedgerEvent]:
    """The block event and the contract events of the valid transactions of a stored
    block. Committed blocks were checked when they were made, so events are read from
    the stored JSON without re-parsing and re-checking every transaction (followers
    read every block; an audit is `healthledger verify`)."""
    raw = json.loads(stored)
    header = BlockHeader.from_json(raw["header"])
    codes: list[str] = raw["codes"]
    counts: dict[str, int] = {}
    for code in codes:
        counts[code] = counts.get(code, 0) + 1
    events = [
        LedgerEvent(
            id=str(header.height),
            kind="block",
            height=header.height,
            data={
                "height": header.height,
                "hash": header.hash,
                "timestamp": header.timestamp,
                "tx_count": len(codes),
                "codes": counts,
            },
        )
    ]
    for t, (tx, code) in enumerate(zip(raw["transactions"], codes, strict=True)):
        if code != ValidationCode.VALID or not tx["response"]["events"]:
            continue
        tx_id = sha256_hex(canonical_json_unchecked(tx["signed_proposal"]))
        for e, event in enumerate(tx["response"]["events"]):
            events.append(
                LedgerEvent(
                    id=f"{header.height}:{t}:{e}",
                    kind="contract",
                    height=header.height,
                    data={
                        "contract": tx["signed_proposal"]["proposal"]["contract"],
                        "name": event["name"],
                        "payload": event["payload"],
                        "tx_id": tx_id,
                        "timestamp": header.timestamp,
                    },
                )
            )
    return events


class EventHub:
    """Wakes followers when blocks commit; the blocks themselves are the log."""

    def __init__(self, store: LedgerStore) -> None:
        self._store = store
        self._changed = threading.Condition()
        self._closed = False

    def notify(self) -> None:
        """A block was committed."""
        with self._changed:
            self._changed.notify_all()

    def close(self) -> None:
        """Release every follower."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait_for_height(self, height: int, timeout: float) -> bool:
        """Wait until block ``height`` is committed; False on timeout or close."""
        with self._changed:
            return (
                self._changed.wait_for(
                    lambda: self._closed or self._store.height() > height, timeout
                )
                and self._store.height() > height
            )

    def read(self, after: str | None, *, limit: int = 1000) -> list[LedgerEvent]:
        """Committed events after event id ``after`` (None: from the start), at most ``limit``."""
        start = (-1, 0, 0) if after is None else parse_event_id(after)
        height = max(start[0], 0)
        result: list[LedgerEvent] = []
        while height < self._store.height() and len(result) < limit:
            for event in block_events(self._store.block_bytes(height)):
                if parse_event_id(event.id) > start:
                    result.append(event)
            height += 1
        return result[:limit]

    def follow(self, after: str | None, *, poll_s: float = 1.0) -> Iterator[LedgerEvent]:
        """Every event after ``after``, then new ones as they commit (until close)."""
        cursor = after
        while not self._closed:
            batch = self.read(cursor)
            for event in batch:
                cursor = event.id
                yield event
            if not batch:
                with self._changed:
                    self._changed.wait(poll_s)
