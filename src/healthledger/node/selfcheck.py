"""Self-check: before a peer signs a checkpoint it re-derives its chain from the stored
bytes (canonical encoding, header, prev-hash link, tx root, state root, global-log
leaves), and sweeps older blocks in the background, so a block changed on disk is
found by the peer that holds it."""

from __future__ import annotations

import logging
from pathlib import Path

from healthledger.ledger.block import BlockHeader, EncodedBlock, verify_block
from healthledger.ledger.errors import InvalidBlock
from healthledger.ledger.store import LedgerStore
from healthledger.node.checkpoint import NOTE_SUFFIX, Checkpoint, CheckpointError

log = logging.getLogger(__name__)


class TamperedBlock(CheckpointError):
    """A stored block does not re-derive to what the chain records."""

    def __init__(self, height: int, why: str) -> None:
        super().__init__(f"stored block {height} fails its self-check: {why}", reason="tampered")
        self.height = height


def rederive_block(store: LedgerStore, height: int, prev: BlockHeader | None) -> BlockHeader:
    """The header of stored block ``height`` once its bytes re-derive to it: the body
    is the canonical encoding of the stored header, its validation codes and its
    transactions, the block follows ``prev`` (the header before it, None for genesis;
    ledger.block.verify_block), and its transactions are the global-log leaves stored
    for it; TamperedBlock otherwise.

    Transactions are hashed from their re-encoded JSON (an EncodedBlock) rather than
    parsed as ``Transaction`` records: the hashes are what the header and the other
    peers' checkpoints commit to, and this keeps the check a fraction of a commit's cost."""
    body = store.block_bytes(height)
    stored = store.header(height)
    try:
        block = EncodedBlock.decode(body)
    except InvalidBlock as exc:
        raise TamperedBlock(height, str(exc)) from exc
    if block.header != stored or stored.height != height:
        raise TamperedBlock(height, "its body carries another header than the one stored")
    try:
        verify_block(prev, block)
    except InvalidBlock as exc:
        raise TamperedBlock(height, str(exc).removeprefix(f"block {height}: ")) from exc
    log_start = 0 if prev is None else prev.log_size
    for index, leaf in enumerate(block.leaf_hashes):
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


def check_latest_checkpoint(store: LedgerStore, folder: Path) -> None:
    """The stored block at the height of this node's latest signed checkpoint
    (``latest.note`` under ``folder``) is the one it signed (block hash, state root,
    global log size and root), as a node checks before serving its store: constant
    work that finds a history rewritten below the recent blocks. TamperedBlock if it
    differs; a note above the head (a store restored from an older copy) or one that
    does not read is logged and left to the checkpoint exchange."""
    path = folder / f"latest{NOTE_SUFFIX}"
    try:
        body, _, _ = path.read_text(encoding="utf-8").partition("\n\n")
        signed = Checkpoint.parse((body + "\n").encode("utf-8"))
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError, CheckpointError) as exc:
        log.warning("%s does not read as a checkpoint (%s): not compared at start", path, exc)
        return
    if signed.height >= store.height():
        log.warning(
            "%s is at block %d, above the store's head %d: not compared at start",
            path,
            signed.height,
            store.height() - 1,
        )
        return
    stored = Checkpoint.of(store.header(signed.height), origin=signed.origin)
    if stored != signed:
        raise TamperedBlock(signed.height, f"it is not the block of the checkpoint in {path}")
