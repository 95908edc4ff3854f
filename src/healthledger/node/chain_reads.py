"""What a peer answers about its committed chain: blocks, transactions, receipts and
RFC 9162 proofs of the global log (the read side of :class:`~healthledger.node.peer.Peer`)."""

from __future__ import annotations

import json
from typing import Any

from healthledger.crypto.canonical import canonical_json_unchecked, parse_canonical
from healthledger.crypto.hashing import sha256
from healthledger.crypto.keys import encode_b64
from healthledger.ledger.block import Block
from healthledger.ledger.chain import Chain
from healthledger.ledger.errors import NotFound
from healthledger.ledger.merkle import leaf_hash, verify_inclusion
from healthledger.ledger.receipt import Receipt as Receipt
from healthledger.ledger.store import LedgerStore, TxLocation
from healthledger.ledger.transaction import Transaction


class ChainReads:
    """Reads of a committed chain; the class that mixes it in provides ``store`` and
    ``chain``."""

    store: LedgerStore
    chain: Chain

    def block(self, height: int) -> Block:
        """Committed block ``height``; NotFound if absent."""
        return Block.from_json(parse_canonical(self.store.block_bytes(height)))

    def locate(self, tx_id: str) -> TxLocation:
        """Where ``tx_id`` committed; NotFound if it did not."""
        location = self.store.tx_location(tx_id)
        if location is None:
            raise NotFound(f"no committed transaction {tx_id}")
        return location

    def transaction(self, tx_id: str) -> tuple[Transaction, TxLocation]:
        """A committed transaction and where it is."""
        location = self.locate(tx_id)
        return self.block(location.height).transactions[location.index], location

    def receipt(self, tx_id: str) -> Receipt:
        """The receipt of a committed transaction."""
        location = self.locate(tx_id)
        header = self.store.header(location.height)
        return Receipt.of(
            tx_id=tx_id,
            height=location.height,
            index=location.index,
            code=location.code,
            block_hash=header.hash,
            log_index=location.log_index,
            timestamp=header.timestamp,
        )

    def inclusion_proof(self, tx_id: str, tree_size: int | None = None) -> dict[str, Any]:
        """RFC 9162 inclusion proof of ``tx_id`` in the global log (field names of the
        RFC 9162 vector files, hashes in base64), with the block it belongs to."""
        location = self.locate(tx_id)
        tx_hash = self._tx_hash(location)
        tx_leaf = leaf_hash(tx_hash)
        current = self.chain.log_size()
        size = current if tree_size is None else tree_size
        if not location.log_index < size <= current:
            raise NotFound(f"tree size must be in ({location.log_index}, {current}]")
        proof = self.chain.log.inclusion_proof(location.log_index, size)
        root = self.chain.log.root(size)
        verify_inclusion(
            leaf_index=location.log_index,
            tree_size=size,
            leaf_hash=tx_leaf,
            proof=proof,
            root=root,
        )
        return {
            "leafIdx": location.log_index,
            "treeSize": size,
            "root": encode_b64(root),
            "leafHash": encode_b64(tx_leaf),
            "proof": [encode_b64(p) for p in proof],
            "txId": tx_id,
            "txHash": tx_hash.hex(),
            "height": location.height,
            "code": str(location.code),
        }

    def _tx_hash(self, location: TxLocation) -> bytes:
        """The hash of a committed transaction, without parsing and checking its whole
        block: a stored block is canonical, so re-encoding one parsed transaction gives
        its canonical bytes (the proof is verified against the log before it is served)."""
        body = self.store.block_bytes(location.height)
        found = transaction_slice(body, location.index)
        if found is not None:
            # Parsing a block of 500 transactions to hash one was nine tenths of a proof's
            # time: the slice is taken when its hash is the leaf the log holds for it.
            tx_hash = sha256(found)
            if self.store.get_node(0, location.log_index) == leaf_hash(tx_hash):
                return tx_hash
        raw = json.loads(body)
        return sha256(canonical_json_unchecked(raw["transactions"][location.index]))

    def consistency_proof(self, size1: int, size2: int | None = None) -> dict[str, Any]:
        """RFC 9162 consistency proof between two sizes of the global log."""
        current = self.chain.log_size()
        size2 = current if size2 is None else size2
        if not 0 < size1 <= size2 <= current:
            raise NotFound(f"sizes must satisfy 0 < size1 <= size2 <= {current}")
        return {
            "size1": size1,
            "size2": size2,
            "root1": encode_b64(self.chain.log.root(size1)),
            "root2": encode_b64(self.chain.log.root(size2)),
            "proof": [encode_b64(p) for p in self.chain.log.consistency_proof(size1, size2)],
        }


_TRANSACTIONS = b'"transactions":['
_NEXT_TRANSACTION = b',{"endorsements":'
_AFTER_TRANSACTIONS = b'],"version":'


def transaction_slice(body: bytes, index: int) -> bytes | None:
    """The bytes of transaction ``index`` in a canonical block's body, found by the
    key every transaction begins with (canonical keys are sorted), or None where that
    does not find it. A guess: the caller checks its hash against the global log."""
    at = body.find(_TRANSACTIONS)
    if at < 0:
        return None
    start = at + len(_TRANSACTIONS)
    for _ in range(index):
        start = body.find(_NEXT_TRANSACTION, start)
        if start < 0:
            return None
        start += 1
    end = body.find(_NEXT_TRANSACTION, start)
    if end < 0:
        end = body.rfind(_AFTER_TRANSACTIONS, start)
    return None if end < 0 else body[start:end]
