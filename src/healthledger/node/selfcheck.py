"""Self-check: before a peer signs a checkpoint it re-derives its chain from the stored
bytes (canonical encoding, header, prev-hash link, tx root, state root, global-log
leaves), and sweeps older blocks in the background, so a block changed on disk is
found by the peer that holds it."""

from __future__ import annotations

import json
import logging

from healthledger.crypto.canonical import canonical_json_unchecked
from healthledger.crypto.errors import CryptoError
from healthledger.crypto.hashing import ZERO_HASH, sha256
from healthledger.ledger.block import FORMAT_VERSION as BLOCK_FORMAT_VERSION
from healthledger.ledger.block import GENESIS_STATE_ROOT, BlockHeader, state_root_after
from healthledger.ledger.errors import LedgerError
from healthledger.ledger.merkle import leaf_hash, root_of
from healthledger.ledger.store import LedgerStore
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.checkpoint import CheckpointError

log = logging.getLogger(__name__)


class TamperedBlock(CheckpointError):
    """A stored block does not re-derive to what the chain records."""

    def __init__(self, height: int, why: str) -> None:
        super().__init__(f"stored block {height} fails its self-check: {why}", reason="tampered")
        self.height = height


def rederive_block(store: LedgerStore, height: int, prev: BlockHeader | None) -> BlockHeader:
    """The header of stored block ``height`` once its bytes re-derive to it: the body
    is the canonical encoding of the stored header, its validation codes and its
    transactions, links to ``prev`` (the header before it, None for genesis), and its
    transactions give its tx root, state root, log size and global-log leaves;
    TamperedBlock otherwise.

    Transactions are hashed from their re-encoded JSON rather than parsed as
    ``Transaction`` records: the hashes are what the header and the other peers'
    checkpoints commit to, and this keeps the check a fraction of a commit's cost."""
    body = store.block_bytes(height)
    stored = store.header(height)
    try:
        raw = json.loads(body)
        if not isinstance(raw, dict) or set(raw) != {"codes", "header", "transactions", "version"}:
            raise TamperedBlock(height, "its bytes are not a block")
        header = BlockHeader.from_json(raw["header"])
        codes = [ValidationCode(c) for c in raw["codes"]]
        transactions = [canonical_json_unchecked(t) for t in raw["transactions"]]
        encoded = (
            b'{"codes":'
            + canonical_json_unchecked([str(c) for c in codes])
            + b',"header":'
            + canonical_json_unchecked(header.to_json())
            + b',"transactions":['
            + b",".join(transactions)
            + b'],"version":'
            + canonical_json_unchecked(raw["version"])
            + b"}"
        )
    except (ValueError, TypeError, LedgerError, CryptoError) as exc:
        raise TamperedBlock(height, f"its bytes do not parse ({exc})") from exc
    if encoded != body or raw["version"] != BLOCK_FORMAT_VERSION or len(codes) != len(transactions):
        raise TamperedBlock(height, "its bytes are not the canonical block")
    if header != stored or stored.height != height:
        raise TamperedBlock(height, "its body carries another header than the one stored")
    if stored.prev_hash != (ZERO_HASH if prev is None else prev.hash):
        raise TamperedBlock(height, "it does not link to the block before it")
    leaves = [leaf_hash(sha256(tx)) for tx in transactions]
    tx_root = root_of(leaves).hex()
    if tx_root != stored.tx_root:
        raise TamperedBlock(height, "its transactions do not give its tx root")
    prev_state = GENESIS_STATE_ROOT if prev is None else prev.state_root
    if state_root_after(prev_state, tx_root, codes) != stored.state_root:
        raise TamperedBlock(height, "its validation codes do not give its state root")
    log_start = 0 if prev is None else prev.log_size
    if stored.log_size != log_start + len(transactions):
        raise TamperedBlock(height, "its transaction count does not give its log size")
    for index, leaf in enumerate(leaves):
        if store.get_node(0, log_start + index) != leaf:
            raise TamperedBlock(height, f"global log leaf {log_start + index} differs")
    return stored


class ChainSelfCheck:
    """Re-derives a peer's chain from its stored blocks: every block up to the head
    about to be signed, plus a sweep of a few older blocks per check that cycles
    through the whole chain, so a block tampered on disk after it was checked is
    still found."""

    def __init__(self, store: LedgerStore, *, sweep: int = 2, tail: int = 64) -> None:
        """``sweep``: older blocks re-derived per check; the first check starts
        ``tail`` blocks below the head (the sweep covers the rest), so a long chain
        does not delay the first checkpoint."""
        self.store = store
        self.sweep = sweep
        self.tail = tail
        self.verified: BlockHeader | None = None
        """The last header re-derived in sequence."""
        self._cursor = 0
        self._cycle_end = 0

    def check(self, head: BlockHeader, *, sweep: int | None = None) -> None:
        """Re-derive every block up to ``head`` not yet checked, then sweep ``sweep``
        older blocks (default: the instance's, or half as many as were new, if more);
        TamperedBlock names the first block that fails.

        Each sweep cycle runs from genesis to the head at the cycle's start, so it ends
        even while the chain grows faster than the sweep."""
        if self.verified is None:
            start = max(0, head.height - self.tail)
            prev = None if start == 0 else self.store.header(start - 1)
        else:
            start, prev = self.verified.height + 1, self.verified
        if head.height < start:
            # Already re-derived (an idle check ran ahead of this checkpoint): the
            # stored header must still be the one committed.
            if self.store.header(head.height).hash != head.hash:
                raise TamperedBlock(head.height, "its stored header changed after commit")
        else:
            for height in range(start, head.height + 1):
                prev = rederive_block(self.store, height, prev)
            if prev is None or prev.hash != head.hash:
                raise TamperedBlock(head.height, "the re-derived head differs from the head")
            self.verified = prev
        budget = max(self.sweep, (head.height + 1 - start) // 2) if sweep is None else sweep
        for _ in range(min(budget, head.height + 1)):
            if self._cursor > self._cycle_end:
                self._cursor, self._cycle_end = 0, head.height
            height = self._cursor
            self._cursor += 1
            rederive_block(
                self.store, height, None if height == 0 else self.store.header(height - 1)
            )


STARTUP_BLOCKS = 16
"""Blocks below the head that a node re-derives before it serves its store."""


def check_recent(store: LedgerStore, *, blocks: int = STARTUP_BLOCKS) -> None:
    """Re-derive the head and the ``blocks - 1`` blocks before it, as a node does
    before serving its store: a crash or a damaged disk shows first in the blocks
    written last. TamperedBlock names the first that fails; the older blocks are the
    running self-check's sweep and the offline audit's."""
    head = store.head()
    if head is None:
        return
    start = max(0, head.height + 1 - blocks)
    prev = None if start == 0 else store.header(start - 1)
    for height in range(start, head.height + 1):
        prev = rederive_block(store, height, prev)
    if prev is None or prev.hash != head.hash:
        raise TamperedBlock(head.height, "the re-derived head differs from the head")
