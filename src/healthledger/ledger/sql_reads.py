"""What both SQL ledger stores (``ledger.sqlite_store`` and ``ledger.postgres_store``) do
alike: the read queries, written once with ``?`` placeholders (a store whose driver
marks parameters otherwise sets ``MARK``), and the rows a block's commit writes.

A store supplies ``_rows`` (every row of a read query, on its own connections, with its
own errors) and keeps ``_head``, the header of its last committed block.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from healthledger.crypto.canonical import canonical_json_unchecked
from healthledger.ledger.block import BlockHeader
from healthledger.ledger.errors import NotFound
from healthledger.ledger.state import HistoryEntry, VersionedValue
from healthledger.ledger.store import BlockCommit, TxLocation
from healthledger.ledger.transaction import ValidationCode

ORDERING_POSITION = "ordering_position"
"""The meta key under which a commit records its ordering stream position."""


@dataclass(frozen=True)
class BlockRows:
    """The rows one block adds or changes, table by table."""

    txs: list[tuple[int, str, int, int, str]]
    """(log_index, tx_id, height, idx, code) of each transaction."""
    history: list[tuple[str, str, int, int, str, str | None]]
    """(ns, key, height, idx, tx_id, value or None for a delete) of every write."""
    puts: list[tuple[str, str, str, int, int]]
    """(ns, key, value, height, idx): the keys whose last write in the block is a put."""
    deletes: list[tuple[str, str]]
    """(ns, key): the keys whose last write in the block is a delete."""


def block_rows(commit: BlockCommit) -> BlockRows:
    """The rows of ``commit``. A key written more than once in the block keeps its last
    write, put or delete, as the block's later transactions saw it
    (``ledger.state.OverlayState``); history keeps every write."""
    block, header = commit.block, commit.block.header
    log_start = header.log_size - len(block.transactions)
    txs = [
        (log_start + i, tx.tx_id, header.height, i, str(code))
        for i, (tx, code) in enumerate(zip(block.transactions, block.codes, strict=True))
    ]
    last: dict[tuple[str, str], tuple[str | None, int, int]] = {}
    history = []
    for u in commit.updates:
        encoded = None if u.deleted else canonical_json_unchecked(u.value).decode("utf-8")
        last[(u.ns, u.key)] = (encoded, u.version[0], u.version[1])
        history.append((u.ns, u.key, u.version[0], u.version[1], u.tx_id, encoded))
    puts = [
        (ns, key, value, height, idx)
        for (ns, key), (value, height, idx) in last.items()
        if value is not None
    ]
    deletes = [pair for pair, (value, _, _) in last.items() if value is None]
    return BlockRows(txs, history, puts, deletes)


class SqlReads:
    """Reads of blocks, transactions, global-log nodes, state and history."""

    MARK: ClassVar[str] = "?"
    """How the store's driver marks a query parameter."""
    HEADER_TIMESTAMP: ClassVar[str] = "json_extract(b.header, '$.timestamp')"
    """SQL for the timestamp in the header of block ``b``."""

    _head: BlockHeader | None

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql if self.MARK == "?" else sql.replace("?", self.MARK)

    def _row(self, sql: str, params: Sequence[Any]) -> Any:
        rows = self._rows(self._sql(sql), params)
        return rows[0] if rows else None

    def height(self) -> int:
        """Number of committed blocks."""
        return 0 if self._head is None else self._head.height + 1

    def head(self) -> BlockHeader | None:
        """Header of the last block."""
        return self._head

    def block_bytes(self, height: int) -> bytes:
        """Stored canonical block."""
        row = self._row("SELECT body FROM blocks WHERE height=?", (height,))
        if row is None:
            raise NotFound(f"no block at height {height}")
        return bytes(row[0])

    def header(self, height: int) -> BlockHeader:
        """Header of a block."""
        row = self._row("SELECT header FROM blocks WHERE height=?", (height,))
        if row is None:
            raise NotFound(f"no block at height {height}")
        return BlockHeader.from_json(json.loads(row[0]))

    def tx_location(self, tx_id: str) -> TxLocation | None:
        """First occurrence of a transaction id."""
        row = self._row(
            "SELECT log_index, tx_id, height, idx, code FROM txs WHERE tx_id=? "
            "ORDER BY log_index LIMIT 1",
            (tx_id,),
        )
        return None if row is None else _location(row)

    def tx_at_log_index(self, log_index: int) -> TxLocation:
        """The transaction at a global log position."""
        row = self._row(
            "SELECT log_index, tx_id, height, idx, code FROM txs WHERE log_index=?",
            (log_index,),
        )
        if row is None:
            raise NotFound(f"no transaction at log index {log_index}")
        return _location(row)

    def get_node(self, level: int, index: int) -> bytes | None:
        """A global-log node."""
        row = self._row("SELECT hash FROM log_nodes WHERE level=? AND idx=?", (level, index))
        return None if row is None else bytes(row[0])

    def get_state(self, ns: str, key: str) -> VersionedValue | None:
        """Current value of a key."""
        row = self._row("SELECT value, height, idx FROM state WHERE ns=? AND key=?", (ns, key))
        if row is None:
            return None
        return VersionedValue(json.loads(row[0]), (row[1], row[2]))

    def range_state(
        self, ns: str, start: str, end: str, limit: int
    ) -> Iterator[tuple[str, VersionedValue]]:
        """Keys in [start, end), in byte order."""
        if end:
            sql = (
                "SELECT key, value, height, idx FROM state WHERE ns=? AND key>=? AND key<? "
                "ORDER BY key LIMIT ?"
            )
            params: tuple[Any, ...] = (ns, start, end, limit)
        else:
            sql = (
                "SELECT key, value, height, idx FROM state WHERE ns=? AND key>=? "
                "ORDER BY key LIMIT ?"
            )
            params = (ns, start, limit)
        for key, value, height, idx in self._rows(self._sql(sql), params):
            yield key, VersionedValue(json.loads(value), (height, idx))

    def key_history(self, ns: str, key: str, limit: int) -> list[HistoryEntry]:
        """Changes of a key, newest first."""
        rows = self._rows(
            self._sql(
                f"SELECT h.tx_id, h.height, h.idx, h.value, {self.HEADER_TIMESTAMP} "  # noqa: S608 - a class constant
                "FROM history h JOIN blocks b ON b.height = h.height "
                "WHERE h.ns=? AND h.key=? ORDER BY h.height DESC, h.idx DESC LIMIT ?"
            ),
            (ns, key, limit),
        )
        return [
            HistoryEntry(
                tx_id=tx_id,
                version=(height, idx),
                timestamp=int(timestamp),
                value=None if value is None else json.loads(value),
                deleted=value is None,
            )
            for tx_id, height, idx, value, timestamp in rows
        ]

    def ordering_position(self) -> int:
        """Stream position recorded by the last commit that carried one; 0 if none."""
        row = self._row("SELECT value FROM meta WHERE key=?", (ORDERING_POSITION,))
        return 0 if row is None else int(row[0])


def _location(row: tuple[Any, ...]) -> TxLocation:
    log_index, tx_id, height, idx, code = row
    return TxLocation(tx_id, height, idx, ValidationCode(code), log_index)
