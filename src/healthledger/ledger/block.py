"""Blocks and their headers (ARCHITECTURE.md section 4), their one canonical encoding
(:func:`encode_block`) and the one check that a block follows the block before it
(:func:`verify_block`), which the chain, the offline audit and a peer's self-check share."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from healthledger.crypto.canonical import canonical_json, canonical_json_unchecked
from healthledger.crypto.errors import CryptoError
from healthledger.crypto.hashing import ZERO_HASH, sha256, sha256_hex
from healthledger.ledger.errors import InvalidBlock
from healthledger.ledger.memo import cached_value
from healthledger.ledger.merkle import leaf_hash, root_of
from healthledger.ledger.transaction import Transaction, ValidationCode
from healthledger.ledger.wire import Count, Hash, Height, MalformedBlock, Record, Timestamp

FORMAT_VERSION: Final = 1
"""On-disk and wire format version of blocks; bumped with a migration."""


class BlockHeader(Record, frozen=True):
    """What a block hash commits to."""

    malformed = MalformedBlock
    what = "block header"

    height: Height
    """0 for the genesis block, then 1, 2, ..."""
    prev_hash: Hash
    """Hex hash of the previous block's header (64 zeros before genesis)."""
    tx_root: Hash
    """Hex RFC 9162 Merkle root over this block's transaction hashes."""
    state_root: Hash
    """Hex commitment to the state after this block: SHA-256 over the previous
    state_root, this block's tx_root and its validation codes. Because each
    transaction's hash covers its write set, this fixes the state transition."""
    log_size: Count
    """Number of transactions in the global log after this block."""
    log_root: Hash
    """Hex RFC 9162 root of the global log after this block."""
    timestamp: Timestamp
    """Ordering time of the block, Unix milliseconds."""

    @cached_value
    def hash(self) -> str:
        """Hex SHA-256 of the canonical header: the block hash."""
        return sha256_hex(canonical_json(self.to_json()))


def state_root_after(prev_state_root: str, tx_root: str, codes: Sequence[ValidationCode]) -> str:
    """The state commitment after a block (see BlockHeader.state_root)."""
    return sha256_hex(
        canonical_json({"prev": prev_state_root, "tx_root": tx_root, "codes": list(codes)})
    )


GENESIS_STATE_ROOT = ZERO_HASH


class Block(Record, frozen=True):
    """A header, the ordered transactions and each one's validation code."""

    malformed = MalformedBlock
    what = "block"

    header: BlockHeader
    transactions: tuple[Transaction, ...]
    codes: tuple[ValidationCode, ...]
    """One validation code per transaction."""
    version: Literal[1] = FORMAT_VERSION
    """The block format version (required on the wire)."""

    @property
    def height(self) -> int:
        """The block's height."""
        return self.header.height

    @property
    def hash(self) -> str:
        """The block hash."""
        return self.header.hash

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
        """Decode a block; structural checks only (see :func:`verify_block` and
        ledger.audit for the rest)."""
        if isinstance(obj, Mapping) and "version" not in obj:
            raise MalformedBlock("block: Object missing required field `version`")
        block = super().from_json(obj)
        if len(block.transactions) != len(block.codes):
            raise MalformedBlock(
                f"block {block.height}: one validation code per transaction is required",
                field="$.codes",
            )
        for index, tx in enumerate(block.transactions):
            try:
                tx.response.canonical  # noqa: B018 - checks the profile once, keeps the bytes
            except CryptoError as exc:
                raise MalformedBlock(
                    f"block {block.height}: response: {exc}",
                    field=f"$.transactions[{index}].response",
                ) from exc
        return block


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
