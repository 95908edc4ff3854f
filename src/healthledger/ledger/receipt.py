"""Receipts: where a transaction committed and how it was judged (what a peer answers
for a committed transaction, and what ``healthledger.verify.receipt`` checks)."""

from __future__ import annotations

from healthledger.ledger.transaction import ValidationCode
from healthledger.ledger.wire import Count, Hash, Height, MalformedBlock, Record, Timestamp


class Receipt(Record, frozen=True):
    """Where a transaction committed and how it was judged."""

    malformed = MalformedBlock
    what = "receipt"

    tx_id: Hash
    """The transaction's id."""
    height: Height
    """The block it committed in."""
    index: Count
    """Its place in that block."""
    code: ValidationCode
    """How the peers judged it: VALID, or why it changed nothing."""
    valid: bool
    """True if ``code`` is VALID."""
    block_hash: Hash
    """The hash of the block it committed in."""
    log_index: Count
    """Its leaf in the global log."""
    timestamp: Timestamp
    """The block's ordering time, Unix milliseconds."""

    def __post_init__(self) -> None:
        if self.valid != (self.code is ValidationCode.VALID):
            raise ValueError("valid must say whether code is VALID")

    @classmethod
    def of(
        cls,
        *,
        tx_id: str,
        height: int,
        index: int,
        code: ValidationCode,
        block_hash: str,
        log_index: int,
        timestamp: int,
    ) -> Receipt:
        """The receipt of a transaction with validation ``code`` (``valid`` follows)."""
        return cls(
            tx_id=tx_id,
            height=height,
            index=index,
            code=code,
            valid=code is ValidationCode.VALID,
            block_hash=block_hash,
            log_index=log_index,
            timestamp=timestamp,
        )
