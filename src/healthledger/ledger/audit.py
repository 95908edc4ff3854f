"""Offline audit of a ledger store: re-derive everything a peer committed and compare.

``audit_store`` opens a SQLite ledger file read-only and, block by block in height
order, checks that

- the stored body is exactly the canonical encoding of the block it holds, and the
  ``header`` and ``hash`` columns are that block's header and hash;
- heights run 0, 1, 2, ... and each block follows the one before it
  (:func:`~healthledger.ledger.block.verify_block`: its ``prev_hash``, ``tx_root``,
  ``state_root`` and ``log_size``), and ``log_root`` is that of a global log rebuilt
  here from the transactions;
- replaying the blocks with the given validator (into a store of the audit's own,
  ``ledger.audit_replay``, that keeps the world state but no history) gives the same
  validation codes, state root and header (so the same decisions);

and that the stored transaction index, key history and global-log nodes are exactly
those the replay produced, block by block as it goes, and the stored world state at the
end, so no row is there that no block explains. Its memory grows with the world state
(on disk past a bounded cache) and the read-ahead, not with the ledger's history.

Verifier style: it returns an :class:`AuditReport` or raises one typed error,
:class:`~healthledger.ledger.errors.InvalidBlock` naming the first bad block (or row),
or :class:`~healthledger.ledger.errors.StorageError` if the file cannot be read as a
ledger at all.

Ed25519 checks are most of the cost. For larger ledgers the audit decodes blocks ahead
of the replay and sends their checks in batches to worker processes, with each signer's
key as the stored (untrusted) final state names it; the replay then looks up the
outcome of exactly the same check (same key, signature and message) and makes the check
itself whenever the workers did not, so what the workers were sent can only make the
audit slower, never wrong.
"""

from __future__ import annotations

import bisect
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from healthledger.crypto.canonical import canonical_json_unchecked
from healthledger.crypto.errors import CryptoError
from healthledger.ledger.audit_replay import ReplayStore, StoredRows
from healthledger.ledger.audit_signatures import SignatureOutcomes, worker_context, worker_start
from healthledger.ledger.audit_source import DB_ERRORS, StoredDb, open_store
from healthledger.ledger.block import FORMAT_VERSION, Block, BlockHeader, verify_block
from healthledger.ledger.chain import Chain
from healthledger.ledger.errors import InvalidBlock, LedgerError, StorageError
from healthledger.ledger.store import LedgerStore
from healthledger.ledger.validation import Validator
from healthledger.ledger.wire import decode_bytes

Progress = Callable[[int, int], None]
"""Called as ``progress(blocks_done, blocks_total)`` after each block."""

ValidatorFor = Callable[[LedgerStore], Validator]
"""Builds the validator for the replay's own store, so that it may keep what it derives
from the committed state per height (contract definitions, key policies, identities),
as a peer's validator does for its store."""

PARALLEL_MIN_TRANSACTIONS = 4096
"""Below this many transactions, starting worker processes costs more than it saves."""

_READ_FAILURES: tuple[type[Exception], ...] = (LedgerError, *DB_ERRORS)
"""What reading the next stored block can raise: a bad block, or a store that fails."""

LOOKAHEAD_TRANSACTIONS = 8192
"""With workers, blocks are decoded and their signatures sent this far ahead of the
replay, so that the workers are verifying while the replay runs."""


@dataclass(frozen=True)
class AuditReport:
    """What a clean audit checked."""

    path: str
    """The ledger file audited."""
    blocks: int
    """Blocks checked (the genesis block included)."""
    transactions: int
    """Transactions checked, valid or not."""
    codes: dict[str, int]
    """Transactions per validation code."""
    head_hash: str
    """Hash of the last block."""
    state_root: str
    """State root of the last block."""
    log_size: int
    """Size of the global log."""
    log_root: str
    """Hex root of the global log."""
    state_keys: int
    """Keys in the world state."""
    workers: int
    """Worker processes that checked signatures ahead of the replay (0: none)."""
    prechecked: int
    """Signature checks of the replay answered by the workers' outcomes."""
    checked_in_replay: int
    """Signature checks the replay made itself (with workers: those they missed)."""
    seconds: float
    """Wall time of the audit."""
    stored_rows: dict[str, int] = field(default_factory=dict)
    """Rows compared per table."""

    @property
    def tx_per_s(self) -> float:
        """Transactions audited per second."""
        return self.transactions / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "path": self.path,
            "ok": True,
            "blocks": self.blocks,
            "transactions": self.transactions,
            "codes": dict(sorted(self.codes.items())),
            "head_hash": self.head_hash,
            "state_root": self.state_root,
            "log_size": self.log_size,
            "log_root": self.log_root,
            "state_keys": self.state_keys,
            "workers": self.workers,
            "prechecked": self.prechecked,
            "checked_in_replay": self.checked_in_replay,
            "seconds": round(self.seconds, 3),
            "tx_per_s": round(self.tx_per_s, 1),
            "stored_rows": dict(sorted(self.stored_rows.items())),
        }


def audit_store(
    path: Path | str,
    *,
    validator: Validator | ValidatorFor,
    progress: Progress | None = None,
    workers: int | None = None,
) -> AuditReport:
    """Audit the ledger file at ``path`` with ``validator`` (the one every peer uses), or
    with the validator ``validator(store)`` builds for the replay's store.

    ``workers`` is how many processes check signatures ahead of the replay; by default
    one per core for ledgers of at least PARALLEL_MIN_TRANSACTIONS transactions, else 0.
    Raises InvalidBlock naming the first bad block, or StorageError if ``path`` is not
    a readable ledger store.
    """
    started = time.perf_counter()
    db = open_store(path)
    try:
        return _Audit(db, validator, progress, workers).run(started)
    except DB_ERRORS as exc:
        raise StorageError(f"cannot read ledger store {db.location}: {exc}") from exc
    finally:
        db.close()


class _Audit:
    """One audit run: the stored file, the replay and the checks between them."""

    def __init__(
        self,
        db: StoredDb,
        validator: Validator | ValidatorFor,
        progress: Progress | None,
        workers: int | None,
    ) -> None:
        self.db = db
        self.path = db.location
        self.validator = validator
        self.progress = progress
        self.workers = workers
        self.log_sizes: list[int] = []
        """log_size after each replayed block, to tell which block made a log node."""

    def run(self, started: float) -> AuditReport:
        """Check everything; the report, or the first problem as an error."""
        self._check_meta()
        total_blocks = self.db.execute("SELECT COUNT(*) FROM blocks").fetchone()[0]
        total_txs = self.db.execute("SELECT COUNT(*) FROM txs").fetchone()[0]
        if total_blocks == 0:
            raise InvalidBlock("block 0: the store holds no blocks")
        workers = self.workers
        if workers is None:
            workers = (os.cpu_count() or 1) if total_txs >= PARALLEL_MIN_TRANSACTIONS else 0
        replay = ReplayStore(self.db)
        tables = StoredRows(self.db, self._block_of_node)
        try:
            given = self.validator
            base = given if isinstance(given, Validator) else given(replay)
            checks: SignatureOutcomes | None = None
            pool: ProcessPoolExecutor | None = None
            replay_validator = base
            if workers > 0:
                try:
                    pool = ProcessPoolExecutor(
                        max_workers=workers, mp_context=worker_context(), initializer=worker_start
                    )
                    checks = SignatureOutcomes(pool, base.identities, self.db)
                    replay_validator = base.with_signature_check(checks.check, threads=1)
                except OSError:
                    # No processes to be had (limits, sandbox): the replay checks everything.
                    if pool is not None:
                        pool.shutdown(wait=True, cancel_futures=True)
                    pool, workers, replay_validator, checks = None, 0, base, None
            try:
                summary = self._replay_blocks(
                    Chain(replay, replay_validator), replay, tables, checks, total_blocks
                )
                rows = tables.finish(replay.raw())
            finally:
                if pool is not None:
                    # Waited for: a pool left to wind down on its own while the process
                    # exits (a bad block ends `healthledger verify` at once) makes
                    # concurrent.futures' exit hook write to a closed pipe, a traceback.
                    pool.shutdown(wait=True, cancel_futures=True)
        finally:
            replay.close()
        head, txs, codes = summary
        return AuditReport(
            path=self.path,
            blocks=head.height + 1,
            transactions=txs,
            codes=codes,
            head_hash=head.hash,
            state_root=head.state_root,
            log_size=head.log_size,
            log_root=head.log_root,
            state_keys=rows["state"],
            workers=workers,
            prechecked=0 if checks is None else checks.hits,
            checked_in_replay=0 if checks is None else checks.misses,
            seconds=time.perf_counter() - started,
            stored_rows=rows,
        )

    def _check_meta(self) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key='format_version'").fetchone()
        if row is None or row[0] != str(FORMAT_VERSION):
            # Audited as it is, never migrated: an older store needs a node to migrate it.
            found = None if row is None else row[0]
            raise StorageError(
                f"{self.path}: store format version {found!r} is not {FORMAT_VERSION} "
                "(a node migrates an older store when it opens it)"
            )

    # --- blocks ----------------------------------------------------------------

    def _replay_blocks(
        self,
        chain: Chain,
        replay: ReplayStore,
        tables: StoredRows,
        checks: SignatureOutcomes | None,
        total: int,
    ) -> tuple[BlockHeader, int, dict[str, int]]:
        """Replay every stored block in height order. With workers, blocks are decoded
        and checked up to LOOKAHEAD_TRANSACTIONS ahead of the replay, their signature
        checks sent to the workers meanwhile; a problem found ahead is raised only when
        the replay reaches its block, so the first bad block is still the one named."""
        previous: BlockHeader | None = None
        txs = 0
        codes: dict[str, int] = {}
        stored = self._checked_blocks(checks)
        ahead: deque[Block] = deque()
        ahead_txs = 0
        lookahead = 0 if checks is None else LOOKAHEAD_TRANSACTIONS
        failure: Exception | None = None
        while True:
            while failure is None and (not ahead or ahead_txs < lookahead):
                try:
                    block = next(stored)
                except StopIteration:
                    break
                except _READ_FAILURES as exc:
                    failure = exc
                    break
                ahead.append(block)
                ahead_txs += len(block.transactions)
            if not ahead:
                if failure is not None:
                    raise failure
                break
            block = ahead.popleft()
            ahead_txs -= len(block.transactions)
            height = block.header.height
            if checks is not None:
                checks.wait_for(height)
            self._check_replay(chain, block, height)
            tables.compare_block(height, *replay.take_rows())
            # Those rows are the replay's own now: committed-id look-ups may read them.
            replay.compared = block.header.log_size
            previous = block.header
            txs += len(block.transactions)
            for code in block.codes:
                codes[str(code)] = codes.get(str(code), 0) + 1
            if self.progress is not None:
                self.progress(height + 1, total)
        assert previous is not None  # the caller made sure there is a block
        return previous, txs, codes

    def _checked_blocks(self, checks: SignatureOutcomes | None) -> Iterator[Block]:
        """The stored blocks in height order, each checked as far as needs no replay
        (and its signature checks sent to the workers)."""
        previous: BlockHeader | None = None
        rows = self.db.stream("SELECT height, hash, header, body FROM blocks ORDER BY height")
        for expected_height, (height, hash_column, header_column, body) in enumerate(rows):
            if height != expected_height:
                raise InvalidBlock(
                    f"block {expected_height}: missing (next stored block is {height})"
                )
            block = self._check_stored_block(height, hash_column, header_column, body, previous)
            if checks is not None:
                checks.send(height, block)
            previous = block.header
            yield block

    def _check_stored_block(
        self,
        height: int,
        hash_column: object,
        header_column: object,
        body: object,
        previous: BlockHeader | None,
    ) -> Block:
        """Everything about block ``height`` that needs no replay."""
        if not isinstance(body, bytes):
            raise InvalidBlock(f"block {height}: body is not a blob")
        block = _decode_canonical(body)
        if block is None:
            block = self._decode_or_explain(height, body)
        header = block.header
        if header.height != height:
            raise InvalidBlock(f"block {height}: header says height {header.height}")
        if header_column != canonical_json_unchecked(header.to_json()).decode("ascii"):
            raise InvalidBlock(f"block {height}: header column differs from the body's header")
        if hash_column != header.hash:
            raise InvalidBlock(f"block {height}: hash column is not the hash of its header")
        verify_block(previous, block)
        return block

    def _decode_or_explain(self, height: int, body: bytes) -> Block:
        """Decode a body that is not simply a canonical block, step by step, to say
        what is wrong with it (the first thing found) or return the block."""
        try:
            raw = json.loads(body, parse_float=_no_float, parse_constant=_no_float)
        except (ValueError, RecursionError) as exc:
            raise InvalidBlock(f"block {height}: body is not canonical JSON: {exc}") from exc
        try:
            block = Block.from_json(raw)
        except InvalidBlock as exc:
            raise InvalidBlock(_name_block(height, str(exc))) from exc
        try:
            encoded = block.canonical
        except CryptoError as exc:
            raise InvalidBlock(f"block {height}: not in the canonical profile: {exc}") from exc
        if body != encoded:
            raise InvalidBlock(
                f"block {height}: stored body is not the canonical encoding of its block"
            )
        return block

    def _check_replay(self, chain: Chain, stored: Block, height: int) -> None:
        """Replay block ``height`` and compare every decision with the stored block."""
        header = stored.header
        try:
            if height == 0:
                if len(stored.transactions) != 1:
                    raise InvalidBlock("block 0: genesis must hold exactly one transaction")
                replayed = chain.commit_genesis(stored.transactions[0], timestamp=header.timestamp)
            else:
                replayed = chain.append(stored.transactions, timestamp=header.timestamp)
        except CryptoError as exc:
            raise InvalidBlock(f"block {height}: cannot replay: {exc}") from exc
        except LedgerError as exc:
            if isinstance(exc, InvalidBlock) and str(exc).startswith(f"block {height}"):
                raise
            raise InvalidBlock(f"block {height}: cannot replay: {exc}") from exc
        for index, (mine, theirs) in enumerate(zip(replayed.codes, stored.codes, strict=True)):
            if mine != theirs:
                raise InvalidBlock(
                    f"block {height}: transaction {index} is stored as {theirs}, "
                    f"but validation gives {mine}"
                )
        # The replay's log holds every transaction so far: its root is the global log's.
        self.log_sizes.append(replayed.header.log_size)
        if replayed.header.log_root != header.log_root:
            raise InvalidBlock(f"block {height}: log_root is not the root of the global log")
        if replayed.header.state_root != header.state_root:
            raise InvalidBlock(f"block {height}: state_root differs from the replayed state")
        if replayed.header != header:
            diff = [k for k, v in replayed.header.to_json().items() if header.to_json()[k] != v]
            raise InvalidBlock(f"block {height}: header field(s) {diff} differ from the replay")

    # --- tables ----------------------------------------------------------------

    def _block_of_node(self, row: tuple[Any, ...]) -> int:
        level, index = row[0], row[1]
        if not isinstance(level, int) or not isinstance(index, int) or not 0 <= level < 64:
            return len(self.log_sizes) - 1
        last_leaf = ((index + 1) << level) - 1
        return min(bisect.bisect_right(self.log_sizes, last_leaf), len(self.log_sizes) - 1)


def _decode_canonical(body: bytes) -> Block | None:
    """The block whose canonical encoding is exactly ``body``, decoded in one pass from
    the bytes; None if it is not one (then the step-by-step path says why)."""
    try:
        block = decode_bytes(body, Block)
        if len(block.transactions) != len(block.codes) or block.canonical != body:
            return None
    except (LedgerError, CryptoError):
        return None
    return block


def _name_block(height: int, message: str) -> str:
    return message if message.startswith(f"block {height}") else f"block {height}: {message}"


def _no_float(text: str) -> Any:
    raise ValueError(f"{text} is not allowed in canonical JSON")
