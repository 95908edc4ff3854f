"""Deterministic block cutting from an ordered stream (ARCHITECTURE.md section 5).

The cutter is a pure function of the stream: fed the same messages in the same order,
every peer cuts the same batches with the same timestamps. It reads no clock. A block
opens at its first transaction; it closes when it holds ``max_block_tx`` transactions,
or when a tick arrives whose stream time is at least the block's open time plus the
batch timeout. A message may carry several transactions (``ordering.packing``): they
join the open block together, so a block closes only between messages and may hold up
to one message's worth beyond ``max_block_tx``. Every cut leaves the cutter empty, so
a peer that resumes right after the closing message of its last block cuts exactly
what a peer that never stopped cuts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from healthledger.crypto.canonical import parse_canonical
from healthledger.crypto.errors import CryptoError
from healthledger.ledger.errors import InvalidTransaction
from healthledger.ledger.transaction import Transaction
from healthledger.ordering.orderer import Batch
from healthledger.ordering.packing import unpack

log = logging.getLogger(__name__)


class EntryKind(StrEnum):
    """What a stream message carries."""

    TX = "tx"
    """The canonical bytes of one transaction, or an array of several."""
    TICK = "tick"
    """A time tick: closes an open block whose timeout has passed."""


@dataclass(frozen=True)
class StreamEntry:
    """One message of the ordered stream, as every consumer sees it."""

    seq: int
    """Stream sequence, 1, 2, ... (assigned by the stream)."""
    timestamp: int
    """Stream time, Unix milliseconds (assigned by the stream leader, replicated)."""
    kind: EntryKind
    payload: bytes


def parse_transaction(payload: bytes) -> Transaction:
    """The transaction a stream message carries; InvalidTransaction if it carries none."""
    try:
        return Transaction.from_json(parse_canonical(payload))
    except CryptoError as exc:
        raise InvalidTransaction(f"not canonical JSON: {exc}") from exc


class BlockCutter:
    """Cuts batches from stream entries; the same entries give the same batches."""

    def __init__(
        self, *, max_block_tx: int, batch_timeout_ms: int, first_sequence: int = 0
    ) -> None:
        if max_block_tx < 1:
            raise ValueError("max_block_tx must be at least 1")
        if batch_timeout_ms < 0:
            raise ValueError("batch_timeout_ms must not be negative")
        self.max_block_tx = max_block_tx
        self.batch_timeout_ms = batch_timeout_ms
        self._sequence = first_sequence
        self._pending: list[Transaction] = []
        self._open_time = 0
        self._open_seq = 0
        self.skipped = 0
        """Messages, and parts of packed messages, skipped: not a transaction."""

    @property
    def open_seq(self) -> int | None:
        """Stream sequence of the open block's first transaction, or None if none is open."""
        return self._open_seq if self._pending else None

    def feed(self, entry: StreamEntry) -> Batch | None:
        """Take the next stream entry; return the batch it closes, if any."""
        if entry.kind is EntryKind.TICK:
            if self._pending and entry.timestamp >= self._open_time + self.batch_timeout_ms:
                return self._cut(entry)
            return None
        try:
            txs, bad = unpack(entry.payload)
        except InvalidTransaction as exc:
            txs, bad = [], 1
            log.warning("stream message %d skipped: %s", entry.seq, exc)
        # Every peer skips the same messages and parts, so the blocks stay identical.
        self.skipped += bad
        if not txs:
            return None
        if not self._pending:
            self._open_time = entry.timestamp
            self._open_seq = entry.seq
        self._pending.extend(txs)
        if len(self._pending) >= self.max_block_tx:
            return self._cut(entry)
        return None

    def _cut(self, closing: StreamEntry) -> Batch:
        batch = Batch(
            self._sequence,
            tuple(self._pending),
            closing.timestamp,
            stream_seq=closing.seq,
        )
        self._sequence += 1
        self._pending = []
        return batch
