"""Read services over one peer's ledger: what the API routes and the web console both use.

The web console reaches the ledger only through these services (and the
transactor and verifier beside them), so a page can never show something the API
would not.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from healthledger.contracts.rules import MEMBERSHIP
from healthledger.ledger.block import Block, BlockHeader
from healthledger.ledger.errors import NotFound
from healthledger.ledger.transaction import Transaction, ValidationCode
from healthledger.node.peer import Peer

Custody = Literal["client", "demo"]

CUSTODY_NOTICE = (
    "Demo custody mode: the server holds every demo identity's private key and signs for "
    "the identity you log in as. Never use this mode in production."
)
"""Stated on every page and in every demo response while demo custody is on."""

MAX_PAGE = 100
"""Most blocks one page of the block list holds."""


@dataclass(frozen=True)
class BlockPage:
    """One page of the block list."""

    items: list[dict[str, Any]]
    height: int
    order: Literal["asc", "desc"]
    next: int | None
    """``from`` of the following page in the same order, or None at the end."""
    previous: int | None
    """``from`` of the page before, or None at the start."""

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "items": self.items,
            "height": self.height,
            "order": self.order,
            "next": self.next,
            "previous": self.previous,
        }


def block_summary(block_json: dict[str, Any]) -> dict[str, Any]:
    """Header fields, hash, transaction count and counts by validation code of a block."""
    header = block_json["header"]
    return {
        **header,
        "hash": block_json["hash"],
        "tx_count": len(block_json["codes"]),
        "codes": dict(Counter(block_json["codes"])),
    }


class ValidationTally:
    """Counts of committed transactions by validation code, kept up to date incrementally
    (committed blocks never change, so each is read once)."""

    def __init__(self, peer: Peer) -> None:
        self._peer = peer
        self._lock = threading.Lock()
        self._scanned = 0
        self._counts: Counter[str] = Counter()

    def counts(self) -> dict[str, int]:
        """Transactions by validation code over the whole chain."""
        with self._lock:
            height = self._peer.store.height()
            while self._scanned < height:
                body = json.loads(self._peer.store.block_bytes(self._scanned))
                self._counts.update(body["codes"])
                self._scanned += 1
            return {code: self._counts[code] for code in sorted(self._counts)}


class LedgerReader:
    """Read-only views of blocks, transactions, proofs, state history and membership."""

    def __init__(self, peer: Peer, *, custody: Custody) -> None:
        self.peer = peer
        self.custody: Custody = custody
        self.tally = ValidationTally(peer)
        self._genesis: str | None = None

    # --- chain -------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Height, head hash and global log size and root."""
        head = self.peer.store.head()
        return {
            "height": self.peer.store.height(),
            "head_hash": None if head is None else head.hash,
            "head_timestamp": None if head is None else head.timestamp,
            "state_root": None if head is None else head.state_root,
            "log_size": 0 if head is None else head.log_size,
            "log_root": None if head is None else head.log_root,
            "genesis_hash": None if head is None else self._genesis_hash(),
            "accepting_writes": self.peer.accepting,
            "ordering_error": self.peer.ordering_error,
            "custody": self.custody,
            "custody_notice": CUSTODY_NOTICE if self.custody == "demo" else None,
        }

    def _genesis_hash(self) -> str:
        """Hash of block 0: which chain this node holds (it never changes)."""
        if self._genesis is None:
            self._genesis = self.peer.store.header(0).hash
        return self._genesis

    def _block_json(self, height: int) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.peer.store.block_bytes(height))
        body["hash"] = BlockHeader.from_json(body["header"]).hash
        return body

    def blocks(
        self, start: int | None, limit: int, order: Literal["asc", "desc"] = "desc"
    ) -> BlockPage:
        """A page of block summaries from height ``start`` (default: head, or 0 ascending)."""
        height = self.peer.store.height()
        limit = max(1, min(limit, MAX_PAGE))
        if order == "desc":
            top = height - 1 if start is None else min(start, height - 1)
            heights = list(range(top, max(top - limit, -1), -1))
            nxt = top - limit if top - limit >= 0 else None
            prev = min(top + limit, height - 1) if top < height - 1 else None
        else:
            first = 0 if start is None else start
            heights = list(range(first, min(first + limit, height)))
            nxt = first + limit if first + limit < height else None
            prev = max(first - limit, 0) if first > 0 else None
        items = [block_summary(self._block_json(h)) for h in heights]
        return BlockPage(items, height, order, nxt, prev)

    def block(self, height: int) -> Block:
        """Committed block ``height``; NotFound if absent."""
        if height < 0:
            raise NotFound(f"no block at height {height}")
        return self.peer.block(height)

    @staticmethod
    def block_json(block: Block) -> dict[str, Any]:
        """A block's JSON form with its hash and its transactions' ids."""
        return {
            "hash": block.hash,
            "block": block.to_json(),
            "tx_ids": [tx.tx_id for tx in block.transactions],
        }

    def transaction(self, tx_id: str) -> tuple[Transaction, dict[str, Any]]:
        """A committed transaction and its JSON view: location, code, hashes."""
        tx, location = self.peer.transaction(tx_id)
        header = self.peer.store.header(location.height)
        return tx, {
            "tx_id": tx.tx_id,
            "tx_hash": tx.tx_hash.hex(),
            "transaction": tx.to_json(),
            "location": {
                "height": location.height,
                "index": location.index,
                "log_index": location.log_index,
                "block_hash": header.hash,
                "timestamp": header.timestamp,
            },
            "code": str(location.code),
            "valid": location.code is ValidationCode.VALID,
        }

    def receipt(self, tx_id: str) -> dict[str, Any]:
        """The receipt of a committed transaction."""
        return self.peer.receipt(tx_id).to_json()

    def inclusion_proof(self, tx_id: str, tree_size: int | None = None) -> dict[str, Any]:
        """RFC 9162 inclusion proof of ``tx_id`` in the global log."""
        return self.peer.inclusion_proof(tx_id, tree_size)

    def consistency_proof(self, first: int, second: int | None = None) -> dict[str, Any]:
        """RFC 9162 consistency proof between two sizes of the global log."""
        return self.peer.consistency_proof(first, second)

    # --- state -------------------------------------------------------------------

    def history(self, contract: str, key: str, limit: int) -> list[dict[str, Any]]:
        """Changes of a state key, newest first."""
        return [
            {
                "tx_id": entry.tx_id,
                "version": list(entry.version),
                "timestamp": entry.timestamp,
                "value": entry.value,
                "deleted": entry.deleted,
            }
            for entry in self.peer.store.key_history(contract, key, limit)
        ]

    # --- membership ----------------------------------------------------------------

    def organisations(self) -> list[dict[str, Any]]:
        """Member organisations, from membership state."""
        return [
            dict(v.value)
            for _, v in self.peer.store.range_state(MEMBERSHIP, "org/", "org0", 10_000)
            if isinstance(v.value, dict)
        ]

    def identities(self, org: str | None = None) -> list[dict[str, Any]]:
        """Registered identities (of ``org`` if given), from membership state."""
        prefix = f"identity/{org}/" if org else "identity/"
        return [
            dict(v.value)
            for _, v in self.peer.store.range_state(MEMBERSHIP, prefix, prefix[:-1] + "0", 100_000)
            if isinstance(v.value, dict)
        ]

    def identity(self, identity_id: str) -> dict[str, Any] | None:
        """One identity record, or None."""
        record = self.peer.store.get_state(MEMBERSHIP, f"identity/{identity_id}")
        return dict(record.value) if record is not None and isinstance(record.value, dict) else None

    def revocations(self) -> list[dict[str, Any]]:
        """Revoked identities, most recent first."""
        revoked = [i for i in self.identities() if i.get("status") == "revoked"]
        return sorted(revoked, key=lambda i: int(i.get("revoked_at", 0)), reverse=True)
