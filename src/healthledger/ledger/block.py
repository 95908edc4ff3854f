"""Blocks and their headers (ARCHITECTURE.md section 4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from healthledger.crypto.canonical import canonical_json
from healthledger.crypto.hashing import ZERO_HASH, is_hex_hash, sha256_hex
from healthledger.ledger.errors import InvalidBlock, InvalidTransaction
from healthledger.ledger.memo import cached_value
from healthledger.ledger.merkle import root_of
from healthledger.ledger.transaction import Transaction, ValidationCode

FORMAT_VERSION = 1
"""On-disk and wire format version of blocks; bumped with a migration."""


@dataclass(frozen=True)
class BlockHeader:
    """What a block hash commits to."""

    height: int
    """0 for the genesis block, then 1, 2, ..."""
    prev_hash: str
    """Hex hash of the previous block's header (64 zeros before genesis)."""
    tx_root: str
    """Hex RFC 9162 Merkle root over this block's transaction hashes."""
    state_root: str
    """Hex commitment to the state after this block: SHA-256 over the previous
    state_root, this block's tx_root and its validation codes. Because each
    transaction's hash covers its write set, this fixes the state transition."""
    log_size: int
    """Number of transactions in the global log after this block."""
    log_root: str
    """Hex RFC 9162 root of the global log after this block."""
    timestamp: int
    """Ordering time of the block, Unix milliseconds."""

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "height": self.height,
            "prev_hash": self.prev_hash,
            "tx_root": self.tx_root,
            "state_root": self.state_root,
            "log_size": self.log_size,
            "log_root": self.log_root,
            "timestamp": self.timestamp,
        }

    @cached_value
    def hash(self) -> str:
        """Hex SHA-256 of the canonical header: the block hash."""
        return sha256_hex(canonical_json(self.to_json()))

    @classmethod
    def from_json(cls, obj: Any) -> BlockHeader:
        """Parse a header."""
        fields = {
            "height",
            "prev_hash",
            "tx_root",
            "state_root",
            "log_size",
            "log_root",
            "timestamp",
        }
        if not isinstance(obj, Mapping) or set(obj) != fields:
            raise InvalidBlock(f"block header must have exactly the fields {sorted(fields)}")
        for name in ("height", "log_size", "timestamp"):
            value = obj[name]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidBlock(f"block header {name} must be a non-negative integer")
        for name in ("prev_hash", "tx_root", "state_root", "log_root"):
            if not is_hex_hash(obj[name]):
                raise InvalidBlock(f"block header {name} must be a hex SHA-256")
        return cls(**obj)


def state_root_after(prev_state_root: str, tx_root: str, codes: Sequence[ValidationCode]) -> str:
    """The state commitment after a block (see BlockHeader.state_root)."""
    return sha256_hex(
        canonical_json({"prev": prev_state_root, "tx_root": tx_root, "codes": list(codes)})
    )


GENESIS_STATE_ROOT = ZERO_HASH


@dataclass(frozen=True)
class Block:
    """A header, the ordered transactions and each one's validation code."""

    header: BlockHeader
    transactions: tuple[Transaction, ...]
    codes: tuple[ValidationCode, ...]

    @property
    def height(self) -> int:
        """The block's height."""
        return self.header.height

    @property
    def hash(self) -> str:
        """The block hash."""
        return self.header.hash

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "version": FORMAT_VERSION,
            "header": self.header.to_json(),
            "transactions": [tx.to_json() for tx in self.transactions],
            "codes": [str(c) for c in self.codes],
        }

    @cached_value
    def canonical(self) -> bytes:
        """The canonical encoding of the block: what a store keeps and a peer sends."""
        # Assembled from each transaction's cached canonical bytes (keys in sorted
        # order) rather than re-encoding every transaction inside one big object.
        return (
            b'{"codes":'
            + canonical_json([str(c) for c in self.codes])
            + b',"header":'
            + canonical_json(self.header.to_json())
            + b',"transactions":['
            + b",".join(tx.canonical for tx in self.transactions)
            + b'],"version":'
            + canonical_json(FORMAT_VERSION)
            + b"}"
        )

    @classmethod
    def from_json(cls, obj: Any) -> Block:
        """Parse a block; structural checks only (see ledger.audit for the rest)."""
        if not isinstance(obj, Mapping) or set(obj) != {
            "version",
            "header",
            "transactions",
            "codes",
        }:
            raise InvalidBlock("block must have exactly version, header, transactions, codes")
        if obj["version"] != FORMAT_VERSION:
            raise InvalidBlock(f"unsupported block format version {obj['version']!r}")
        header = BlockHeader.from_json(obj["header"])
        raw_txs, raw_codes = obj["transactions"], obj["codes"]
        if not isinstance(raw_txs, list) or not isinstance(raw_codes, list):
            raise InvalidBlock("transactions and codes must be lists")
        if len(raw_txs) != len(raw_codes):
            raise InvalidBlock("one validation code per transaction is required")
        try:
            txs = tuple(Transaction.from_json(t) for t in raw_txs)
        except InvalidTransaction as exc:
            raise InvalidBlock(f"block {header.height}: {exc}") from exc
        try:
            codes = tuple(ValidationCode(c) for c in raw_codes)
        except ValueError as exc:
            raise InvalidBlock(f"block {header.height}: unknown validation code") from exc
        return cls(header, txs, codes)


def tx_root_of(transactions: Sequence[Transaction]) -> str:
    """Hex Merkle root over the transaction hashes."""
    return root_of([tx.leaf_hash for tx in transactions]).hex()


def genesis_prev_hash() -> str:
    """The prev_hash of the genesis block."""
    return ZERO_HASH
