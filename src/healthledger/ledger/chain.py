"""The validate-and-commit pipeline: turns ordered transactions into committed blocks."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from healthledger.crypto.hashing import ZERO_HASH
from healthledger.ledger.block import (
    GENESIS_STATE_ROOT,
    Block,
    BlockHeader,
    state_root_after,
    tx_root_of,
    verify_block,
)
from healthledger.ledger.errors import InvalidBlock, StoreUnavailable
from healthledger.ledger.merkle import MerkleLog
from healthledger.ledger.state import StateUpdate
from healthledger.ledger.store import BlockCommit, LedgerStore
from healthledger.ledger.transaction import Transaction, ValidationCode
from healthledger.ledger.validation import BlockValidation, Validator

OUTCOME_WAIT_S = 30.0
"""How long a committed block waits for a store's server that went away to answer again."""


class Chain:
    """One peer's ledger: the store, the global log and the validator."""

    def __init__(self, store: LedgerStore, validator: Validator) -> None:
        self.store = store
        self.validator = validator
        head = store.head()
        self.log = MerkleLog(store, 0 if head is None else head.log_size)
        self._lock = threading.Lock()
        # Held while a block becomes visible in the store and the log advances, so
        # readers never see a head whose log_size the in-memory log has not reached.
        self._publish = threading.Lock()

    def log_size(self) -> int:
        """Size of the global log as of the last fully published block."""
        with self._publish:
            return self.log.size

    def height(self) -> int:
        """Number of committed blocks."""
        return self.store.height()

    def is_committed(self, tx_id: str) -> bool:
        """True if ``tx_id`` already appears in a committed block."""
        return self.store.tx_location(tx_id) is not None

    def commit_genesis(self, tx: Transaction, *, timestamp: int) -> Block:
        """Commit the genesis block: its one transaction's writes are the consortium's
        root of trust and are applied without endorsement."""
        if self.store.height() != 0:
            raise InvalidBlock("the ledger already has a genesis block")
        updates = tuple(
            StateUpdate(w.ns, w.key, w.new_value, w.deletes, (0, 0), tx.tx_id)
            for w in tx.response.rwset.writes
        )
        return self._commit([tx], BlockValidation((ValidationCode.VALID,), updates), timestamp)

    def append(
        self,
        transactions: Sequence[Transaction],
        *,
        timestamp: int,
        stream_seq: int | None = None,
    ) -> Block:
        """Validate ``transactions`` in order and commit them as the next block;
        ``stream_seq`` (the ordering stream position that closed the batch) is stored
        with it atomically."""
        with self._lock:
            head = self.store.head()
            if head is None:
                raise InvalidBlock("the ledger has no genesis block")
            timestamp = max(timestamp, head.timestamp)
            # The block's ids already committed, in one query rather than one per id.
            committed = self.store.committed_among([tx.tx_id for tx in transactions])
            validation = self.validator.validate_block(
                transactions,
                state=self.store,
                height=head.height + 1,
                timestamp=timestamp,
                is_committed=committed.__contains__,
            )
            return self._commit(transactions, validation, timestamp, stream_seq)

    def build_block(
        self,
        transactions: Sequence[Transaction],
        validation: BlockValidation,
        timestamp: int,
        stream_seq: int | None = None,
    ) -> tuple[Block, BlockCommit]:
        """The block that follows the head, and what committing it writes."""
        head = self.store.head()
        append = self.log.plan_append([tx.leaf_hash for tx in transactions])
        tx_root = tx_root_of(transactions)
        header = BlockHeader(
            height=0 if head is None else head.height + 1,
            prev_hash=ZERO_HASH if head is None else head.hash,
            tx_root=tx_root,
            state_root=state_root_after(
                GENESIS_STATE_ROOT if head is None else head.state_root,
                tx_root,
                validation.codes,
            ),
            log_size=append.size,
            log_root=append.root.hex(),
            timestamp=timestamp,
        )
        block = Block(header, tuple(transactions), validation.codes)
        # The very check every auditor and peer makes of this block later: a block that
        # would fail it (a bug in building one) is never committed.
        verify_block(head, block)
        commit = BlockCommit(
            block=block,
            block_bytes=block.canonical,
            updates=validation.updates,
            log_append=append,
            stream_seq=stream_seq,
        )
        return block, commit

    def _commit(
        self,
        transactions: Sequence[Transaction],
        validation: BlockValidation,
        timestamp: int,
        stream_seq: int | None = None,
    ) -> Block:
        block, commit = self.build_block(transactions, validation, timestamp, stream_seq)
        with self._publish:
            self.store.commit(commit)
            self._advance_log(commit)
        return block

    def _advance_log(self, commit: BlockCommit) -> None:
        """Advance the in-memory log past a committed block. Its check reads the stored
        nodes back; a store whose server went away just after the commit cannot answer
        yet, but the block is committed, so the check is asked again until the server
        is back (for up to ``OUTCOME_WAIT_S``), never skipped and never left behind the
        store's head."""
        deadline = time.monotonic() + OUTCOME_WAIT_S
        pause = 0.05
        while True:
            try:
                self.log.advance(commit.log_append)
                return
            except StoreUnavailable:
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(1.0, pause * 2)
