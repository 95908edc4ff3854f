"""What the offline audit replays a ledger into, and how it compares the stored rows.

The audit (``ledger.audit``) replays every stored block through a store of its own and
compares what the replay derives with what the file holds. Its memory must not grow
with the ledger, which a regulator may audit at 10^7 transactions and more, so:

- :class:`ReplayStore` keeps only the world state (in a private temporary SQLite file,
  so the page cache bounds its memory), the last header and the global log's right edge
  (one perfect-subtree hash a level: all a Merkle append and root need). Whether a
  transaction id was committed before is asked of the stored file's own ``txs`` table,
  among the rows already compared equal to the replay's (:attr:`ReplayStore.compared`),
  so the answer is the replay's own.
- :class:`StoredRows` compares each replayed block's rows (``txs``, ``history``,
  ``log_nodes``) with the stored tables as the replay goes, reading each table once in
  the order the replay makes its rows, and the world state at the end. A row missing,
  extra or different is named with the first block it concerns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NoReturn

from healthledger.ledger.audit_source import Rows, StoredDb
from healthledger.ledger.block import BlockHeader
from healthledger.ledger.errors import InvalidBlock, NotFound, StorageError
from healthledger.ledger.sql_reads import SqlReads, block_rows
from healthledger.ledger.sqlite_store import SCHEMA, committed_in, states_in
from healthledger.ledger.state import HistoryEntry, VersionedValue
from healthledger.ledger.store import BlockCommit, TxLocation
from healthledger.ledger.transaction import ValidationCode

REPLAY_CACHE_KIB = 64 * 1024
"""Page cache of the replay's state file: past it, pages go to the temporary file."""

Row = tuple[Any, ...]
BlockOf = Callable[[Row], int]
"""The height of the block a stored row belongs to, as the row says (-1 if it cannot)."""


class RightEdge:
    """A :class:`NodeReader` that keeps only the right edge of a log: the perfect subtrees
    a log of its size decomposes into, one per set bit of the size. That is all an
    append's left children and the root at that size read, so a log that is only ever
    appended to (an audit's replay) needs O(log n) memory, not every node."""

    def __init__(self) -> None:
        """An edge of the empty log."""
        self._nodes: dict[tuple[int, int], bytes] = {}

    def get_node(self, level: int, index: int) -> bytes | None:
        """The node, if it is on the edge."""
        return self._nodes.get((level, index))

    def advance(self, nodes: Iterable[tuple[int, int, bytes]], size: int) -> None:
        """Take an append's new ``nodes`` and keep the edge of the log at ``size``."""
        for level, index, node in nodes:
            self._nodes[(level, index)] = node
        self._nodes = {
            (level, index): node
            for (level, index), node in self._nodes.items()
            if (size >> level) & 1 and index == (size >> level) - 1
        }

    def __len__(self) -> int:
        """Nodes kept: the number of set bits of the log's size."""
        return len(self._nodes)


class ReplayStore(SqlReads):
    """A ledger store for the audit's replay: the world state and the log's right edge.

    It serves what validation and a block's commit read (state, committed ids, the log
    nodes an append needs) and keeps each committed block's rows for the audit to
    compare (:meth:`take_rows`); blocks, history and older log nodes it does not keep.
    """

    def __init__(self, stored: StoredDb) -> None:
        """``stored``: the audited file, read inside the audit's read transaction."""
        self._stored = stored
        # "" is a private temporary database on disk, removed when closed.
        self._db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(f"PRAGMA cache_size=-{REPLAY_CACHE_KIB}")
        self._db.executescript(SCHEMA)
        self._head: BlockHeader | None = None
        self._edge = RightEdge()
        self._taken: tuple[list[Row], list[Row], tuple[tuple[int, int, bytes], ...]] | None
        self._taken = None
        self.compared = 0
        """Transactions (in global-log order) whose stored ``txs`` rows the audit has
        found equal to the replay's: committed-id look-ups read only those."""

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return self._db.execute(sql, params).fetchall()

    def committed_among(self, tx_ids: Sequence[str]) -> set[str]:
        """Those of ``tx_ids`` among the transactions compared so far."""
        return committed_in(self._stored.rows, tx_ids, before_log_index=self.compared)

    def tx_location(self, tx_id: str) -> TxLocation | None:
        """First occurrence of a transaction id among those compared so far."""
        row = self._stored.execute(
            "SELECT log_index, tx_id, height, idx, code FROM txs WHERE tx_id=? AND "
            "log_index < ? ORDER BY log_index LIMIT 1",
            (tx_id, self.compared),
        ).fetchone()
        if row is None:
            return None
        log_index, found, height, idx, code = row
        return TxLocation(found, height, idx, ValidationCode(code), log_index)

    def get_states(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], VersionedValue]:
        """Current values of several keys (absent ones left out)."""
        return states_in(self._rows, keys)

    def get_node(self, level: int, index: int) -> bytes | None:
        """A node of the log's right edge (the only ones kept)."""
        return self._edge.get_node(level, index)

    def block_bytes(self, height: int) -> bytes:
        """Not kept: the audit reads blocks from the file it audits."""
        raise NotFound(f"the audit's replay keeps no block bodies (asked for {height})")

    def header(self, height: int) -> BlockHeader:
        """Only the last header is kept."""
        if self._head is not None and self._head.height == height:
            return self._head
        raise NotFound(f"the audit's replay keeps only the last header (asked for {height})")

    def tx_at_log_index(self, log_index: int) -> TxLocation:
        """Not kept: the audit compares the stored ``txs`` rows instead."""
        raise NotFound(f"the audit's replay keeps no transaction index (asked for {log_index})")

    def key_history(self, ns: str, key: str, limit: int) -> list[HistoryEntry]:
        """Not kept: validation reads no history."""
        raise StorageError(f"the audit's replay keeps no key history (asked for {ns}/{key})")

    def ordering_position(self) -> int:
        """An audit orders nothing."""
        return 0

    def commit(self, commit: BlockCommit) -> None:
        """Apply a replayed block's state changes, move the log's right edge past it and
        keep its rows for :meth:`take_rows`."""
        header = commit.block.header
        if header.height != self.height():
            raise StorageError(f"block {header.height} out of order: next is {self.height()}")
        rows = block_rows(commit)
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?, ?)", rows.puts)
        self._db.executemany("DELETE FROM state WHERE ns=? AND key=?", rows.deletes)
        self._db.execute("COMMIT")
        self._edge.advance(commit.log_append.nodes, header.log_size)
        self._head = header
        self._taken = (rows.txs, rows.history, commit.log_append.nodes)

    def take_rows(self) -> tuple[list[Row], list[Row], tuple[tuple[int, int, bytes], ...]]:
        """The ``txs`` rows, history rows and log nodes of the block committed last."""
        if self._taken is None:
            raise StorageError("no replayed block's rows to compare")
        taken, self._taken = self._taken, None
        return taken

    def raw(self) -> sqlite3.Connection:
        """The replay's state file (its ``state`` table is the replayed world state)."""
        return self._db

    def close(self) -> None:
        """Close and so remove the replay's temporary file."""
        self._db.close()


class StoredRows:
    """The stored ``txs``, ``history`` and ``log_nodes`` rows, read once each in the order
    the replay makes them and compared block by block; the ``state`` rows at the end."""

    def __init__(self, db: StoredDb, log_block: BlockOf) -> None:
        """``log_block`` names the block a stored log node belongs to."""
        self._db = db
        self._log_block = log_block
        self._txs = db.stream(
            "SELECT log_index, tx_id, height, idx, code FROM txs ORDER BY log_index"
        )
        # In the replay's order: block, transaction, then key (SQLite sorts once).
        self._history = db.stream(
            "SELECT ns, key, height, idx, tx_id, value FROM history ORDER BY height, idx, ns, key"
        )
        self._levels: list[Rows] = []
        self.counts = {"txs": 0, "history": 0, "log_nodes": 0}
        self.last_height = 0

    def compare_block(
        self,
        height: int,
        txs: list[Row],
        history: list[Row],
        nodes: Sequence[tuple[int, int, bytes]],
    ) -> None:
        """Compare block ``height``'s replayed rows with the next stored ones."""
        self.last_height = height
        self._compare("txs", self._txs, txs, 1, _column(2))
        history = sorted(history, key=lambda row: (row[2], row[3], row[0], row[1]))
        self._compare("history", self._history, history, 4, _column(2), order=_history_order)
        by_level: dict[int, list[Row]] = {}
        for level, index, node in nodes:
            by_level.setdefault(level, []).append((level, index, node))
        for level in sorted(by_level):
            while len(self._levels) <= level:
                self._levels.append(
                    self._db.stream(
                        "SELECT level, idx, hash FROM log_nodes WHERE level=? ORDER BY idx",
                        (len(self._levels),),
                    )
                )
            self._compare("log_nodes", self._levels[level], by_level[level], 2, self._log_block)

    def finish(self, replay: sqlite3.Connection) -> dict[str, int]:
        """After the last block: no stored row is left over, and the stored world state
        is the replayed one. The rows compared, per table."""
        self._leftover("txs", self._txs, 1, _column(2))
        self._leftover("history", self._history, 4, _column(2))
        for cursor in self._levels:
            self._leftover("log_nodes", cursor, 2, self._log_block)
        beyond = self._db.stream(
            "SELECT level, idx, hash FROM log_nodes WHERE level NOT BETWEEN 0 AND ? "
            "ORDER BY level, idx",
            (len(self._levels) - 1,),
        )
        self._leftover("log_nodes", beyond, 2, self._log_block)
        sql = "SELECT ns, key, value, height, idx FROM state ORDER BY ns, key"
        stored, replayed = self._db.stream(sql), replay.execute(sql)
        count = 0
        while True:
            mine, theirs = replayed.fetchmany(4096), stored.fetchmany(4096)
            if mine != theirs:
                # Out of step from here on: merge the rest row by row to name the first.
                self._merge(
                    "state", iter([*theirs, *stored]), iter([*mine, *replayed]), 2, _column(3)
                )
            if not mine:
                break
            count += len(mine)
        self.counts["state"] = count
        return self.counts

    def _compare(
        self,
        table: str,
        cursor: Rows,
        mine: list[Row],
        key_width: int,
        block_of: BlockOf,
        order: Callable[[Row], Any] | None = None,
    ) -> None:
        if not mine:
            return
        theirs = cursor.fetchmany(len(mine))
        if theirs != mine:
            self._merge(table, iter(theirs), iter(mine), key_width, block_of, order)
        self.counts[table] += len(mine)

    def _merge(
        self,
        table: str,
        theirs: Iterator[Row],
        mine: Iterator[Row],
        key_width: int,
        block_of: BlockOf,
        order: Callable[[Row], Any] | None = None,
    ) -> None:
        """Merge ``theirs`` (stored) and ``mine`` (replayed), both in the table's order,
        and name the first row that is missing, extra or different."""
        key = order or (lambda row: _sql_order(row[:key_width]))
        stored, replayed = next(theirs, None), next(mine, None)
        while stored is not None or replayed is not None:
            if stored == replayed:
                stored, replayed = next(theirs, None), next(mine, None)
                continue
            if replayed is None or (stored is not None and key(stored) < key(replayed)):
                assert stored is not None
                self._fail(
                    table, stored, key_width, block_of(stored), "is stored but no block explains it"
                )
            assert replayed is not None
            if stored is None or key(stored) > key(replayed):
                self._fail(
                    table, replayed, key_width, block_of(replayed), "is missing from the store"
                )
            self._fail(table, replayed, key_width, block_of(replayed), "differs from the replay")

    def _leftover(self, table: str, cursor: Rows, key_width: int, block_of: BlockOf) -> None:
        row = cursor.fetchone()
        if row is not None:
            self._fail(table, row, key_width, block_of(row), "is stored but no block explains it")

    def _fail(self, table: str, row: Row, key_width: int, height: int, problem: str) -> NoReturn:
        height = height if 0 <= height <= self.last_height else self.last_height
        raise InvalidBlock(f"block {height}: {table} row {_describe(row, key_width)} {problem}")


def _history_order(row: Row) -> Any:
    return _sql_order((row[2], row[3], row[0], row[1]))


def _column(i: int) -> BlockOf:
    def block_of(row: Row) -> int:
        value = row[i]
        return value if isinstance(value, int) else -1

    return block_of


def _describe(row: Row, key_width: int) -> str:
    key = row[:key_width]
    return "(" + ", ".join(repr(v.hex() if isinstance(v, bytes) else v) for v in key) + ")"


def _sql_order(values: Row) -> tuple[tuple[int, Any], ...]:
    """A sort key agreeing with SQLite's order: NULL, numbers, text, blobs (by bytes)."""
    return tuple(
        (0, 0)
        if v is None
        else (1, v)
        if isinstance(v, int | float)
        else (2, v)
        if isinstance(v, str)
        else (3, bytes(v))
        for v in values
    )
