"""Blocks and their headers (ARCHITECTURE.md section 4), their one canonical encoding
(:func:`encode_block`) and the one check that a block follows the block before it
(:func:`verify_block`), which the chain, the offline audit and a peer's self-check share."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from healthledger.crypto.canonical import canonical_json, canonical_json_unchecked
from healthledger.crypto.errors import CryptoError
from healthledger.crypto.hashing import ZERO_HASH, is_hex_hash, sha256, sha256_hex
from healthledger.ledger.errors import InvalidBlock, InvalidTransaction
from healthledger.ledger.memo import cached_value
from healthledger.ledger.merkle import leaf_hash, root_of
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
        return encode_block(self.header, self.codes, [tx.canonical for tx in self.transactions])

    @cached_value
    def leaf_hashes(self) -> tuple[bytes, ...]:
        """The block's leaves of the global log, in order."""
        return tuple(tx.leaf_hash for tx in self.transactions)

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


@dataclass(frozen=True)
class EncodedBlock:
    """A block decoded only as far as checking its links needs: the header and codes
    parsed, each transaction kept as its canonical bytes (re-encoded from the JSON,
    never parsed as a Transaction), which is all its hashes depend on and a fraction
    of the cost of parsing."""

    header: BlockHeader
    codes: tuple[ValidationCode, ...]
    transactions: tuple[bytes, ...]
    """Each transaction's canonical encoding."""

    @classmethod
    def decode(cls, body: bytes) -> EncodedBlock:
        """The block whose canonical encoding is ``body``; InvalidBlock if ``body`` is
        not a block or not in canonical form."""
        try:
            raw = json.loads(body)
            if not isinstance(raw, dict) or set(raw) != {
                "codes",
                "header",
                "transactions",
                "version",
            }:
                raise InvalidBlock("its bytes are not a block")
            block = cls(
                BlockHeader.from_json(raw["header"]),
                tuple(ValidationCode(c) for c in raw["codes"]),
                tuple(canonical_json_unchecked(t) for t in raw["transactions"]),
            )
            canonical = block.canonical
        except InvalidBlock:
            raise
        except (ValueError, TypeError, RecursionError, CryptoError) as exc:
            raise InvalidBlock(f"its bytes do not parse ({exc})") from exc
        # A version other than FORMAT_VERSION encodes differently, so this refuses it too.
        if canonical != body:
            raise InvalidBlock("its bytes are not the canonical block")
        return block

    @cached_value
    def canonical(self) -> bytes:
        """The canonical encoding of the block."""
        return encode_block(self.header, self.codes, self.transactions)

    @cached_value
    def leaf_hashes(self) -> tuple[bytes, ...]:
        """The block's leaves of the global log, in order."""
        return tuple(leaf_hash(sha256(tx)) for tx in self.transactions)


def encode_block(
    header: BlockHeader, codes: Sequence[ValidationCode], transactions: Sequence[bytes]
) -> bytes:
    """The canonical encoding of a block from its header, its validation codes and each
    transaction's canonical encoding: the one place block bytes are assembled."""
    # Keys in sorted order, each part already canonical (a header holds only integers
    # and hex, codes are ASCII names), so nothing is re-encoded inside one big object.
    return (
        b'{"codes":'
        + canonical_json_unchecked([str(c) for c in codes])
        + b',"header":'
        + canonical_json_unchecked(header.to_json())
        + b',"transactions":['
        + b",".join(transactions)
        + b'],"version":'
        + canonical_json_unchecked(FORMAT_VERSION)
        + b"}"
    )


class BlockParts(Protocol):
    """What :func:`verify_block` reads of a block: a :class:`Block` or an
    :class:`EncodedBlock` alike."""

    @property
    def header(self) -> BlockHeader:
        """The block's header."""
        ...

    @property
    def codes(self) -> Sequence[ValidationCode]:
        """One validation code per transaction."""
        ...

    @property
    def leaf_hashes(self) -> Sequence[bytes]:
        """The block's leaves of the global log, in order."""
        ...


def verify_block(previous: BlockHeader | None, block: BlockParts) -> None:
    """Check that ``block`` is the block after ``previous`` (None: that ``block`` is a
    genesis block) as far as the two headers and the block's content decide: its
    height and prev_hash link to ``previous``, its tx_root is the root of its
    transactions, its state_root the commitment of its validation codes after
    ``previous``'s, and its log_size ``previous``'s plus its transactions. Raises
    InvalidBlock naming the block and the first defect found.

    What it cannot decide alone is left to the caller: the log_root (needs the global
    log), and whether the validation codes are right (needs the state to replay)."""
    header = block.header
    height = 0 if previous is None else previous.height + 1
    if header.height != height:
        follows = "a genesis block" if previous is None else f"the block after block {height - 1}"
        raise InvalidBlock(f"block {header.height}: is not at height {height}, as {follows} is")
    if header.prev_hash != (ZERO_HASH if previous is None else previous.hash):
        raise InvalidBlock(f"block {height}: prev_hash does not link to block {height - 1}")
    leaves = block.leaf_hashes
    if len(block.codes) != len(leaves):
        raise InvalidBlock(
            f"block {height}: {len(block.codes)} validation codes for {len(leaves)} transactions"
        )
    if previous is None and len(leaves) != 1:
        raise InvalidBlock("block 0: genesis must hold exactly one transaction")
    tx_root = root_of(leaves).hex()
    if header.tx_root != tx_root:
        raise InvalidBlock(f"block {height}: tx_root is not the root of its transactions")
    prev_state_root = GENESIS_STATE_ROOT if previous is None else previous.state_root
    if header.state_root != state_root_after(prev_state_root, tx_root, block.codes):
        raise InvalidBlock(
            f"block {height}: state_root is not the commitment of its validation codes"
        )
    log_size = (0 if previous is None else previous.log_size) + len(leaves)
    if header.log_size != log_size:
        raise InvalidBlock(
            f"block {height}: log_size {header.log_size}, but the log holds {log_size}"
        )


def tx_root_of(transactions: Sequence[Transaction]) -> str:
    """Hex Merkle root over the transaction hashes."""
    return root_of([tx.leaf_hash for tx in transactions]).hex()


def genesis_prev_hash() -> str:
    """The prev_hash of the genesis block."""
    return ZERO_HASH
