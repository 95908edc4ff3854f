"""SQLite implementation of the ledger store.

WAL journal with ``synchronous=FULL``: a commit returns only after its WAL frames
are synced, so an acknowledged block survives power loss, and a process killed
mid-commit leaves the previous block as the head (the transaction never landed).
A commit the disk has no room for raises :class:`StorageFull` after rolling back:
nothing of it is on disk, and the next commit, once there is room, goes through.

A node opens its store with ``startup_check``: the write-ahead log is compared with
the wal-index before SQLite reads it (``ledger.wal``), then, unless the file is
unchanged since the store was last closed cleanly (``ledger.clean_stop``), ``PRAGMA
quick_check`` reads every page; a damaged store raises :class:`CorruptStore`, whose
message says how to restore it. Such a store records its clean stop when closed.

Reads do not wait for a commit: each reading thread has its own connection, and
WAL gives every read statement the last committed snapshot while the writer syncs
the next block. (An in-memory store has one connection, shared under a lock.)
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from healthledger.crypto.canonical import canonical_json_unchecked
from healthledger.ledger.block import FORMAT_VERSION, BlockHeader
from healthledger.ledger.clean_stop import CleanStop, record_clean_stop, take_clean_stop
from healthledger.ledger.errors import (
    CorruptStore,
    LedgerError,
    StorageError,
    StorageFull,
)
from healthledger.ledger.migrations import migrate
from healthledger.ledger.sql_reads import ORDERING_POSITION, SqlReads, block_rows
from healthledger.ledger.state import VersionedValue
from healthledger.ledger.store import BlockCommit
from healthledger.ledger.wal import read_store_wal

log = logging.getLogger(__name__)
_IN_CHUNK = 500
"""Parameters of one ``IN (...)`` list (SQLite allows at least 999)."""

SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_NOTADB = 26
"""Primary SQLite result codes (``sqlite3.Error.sqlite_errorcode`` & 0xff)."""

RESTORE_HINT = (
    "restore it before serving: join again from a snapshot of a healthy peer "
    "(healthledger network join, operator guide 8.2) or copy ledger.sqlite from a "
    "healthy peer or a backup (operator guide 4.2)"
)
"""What to do about a damaged store, in the one line that reports it."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    header TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS txs (
    log_index INTEGER PRIMARY KEY,
    tx_id TEXT NOT NULL,
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    code TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS txs_by_id ON txs (tx_id);
CREATE TABLE IF NOT EXISTS state (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    tx_id TEXT NOT NULL,
    value TEXT,
    PRIMARY KEY (ns, key, height, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
"""


class SqliteStore(SqlReads):
    """A ledger store in one SQLite file (or ``:memory:``)."""

    def __init__(
        self, path: Path | str, *, synchronous: str = "FULL", startup_check: bool = False
    ) -> None:
        """``startup_check``: refuse a damaged store (CorruptStore) before using it, and
        record a clean stop when closing it; a node serving the store asks for it,
        tools reading a copy need not."""
        if synchronous not in {"FULL", "NORMAL", "OFF", "EXTRA"}:
            raise ValueError(f"unknown synchronous mode {synchronous!r}")
        self.path = str(path)
        on_disk = self.path not in {":memory:", ""} and not self.path.startswith("file:")
        self._records_clean_stop = startup_check and on_disk
        self.pages_checked: bool | None = None
        """Whether the start read every page (after an unclean stop or a change to
        the file), or trusted a clean stop; None without ``startup_check``."""
        clean: CleanStop | None = None
        existed = on_disk and Path(self.path).exists()
        if startup_check and on_disk:
            # Before connecting: the first connection resets the wal-index it reads.
            self._check_wal()
            try:
                clean = take_clean_stop(Path(self.path))
            except OSError as exc:
                raise StorageError(
                    f"cannot read the clean-stop record of {self.path}: {exc}"
                ) from exc
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.DatabaseError as exc:
            raise storage_error(exc, f"cannot open ledger store {self.path}") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA foreign_keys=ON")
            if startup_check and clean is None:
                if existed:
                    log.warning(
                        "ledger store %s was not closed cleanly or changed since: "
                        "checking every page (PRAGMA quick_check)",
                        self.path,
                    )
                self._quick_check()
            self._db.executescript(SCHEMA)
            self._check_version()
        except (sqlite3.DatabaseError, StorageError) as exc:
            self._db.close()
            if isinstance(exc, StorageError):
                raise
            if _code(exc) in {SQLITE_CORRUPT, SQLITE_NOTADB}:
                raise CorruptStore(
                    f"ledger store {self.path} is damaged ({exc}); {RESTORE_HINT}"
                ) from exc
            raise storage_error(exc, f"cannot open ledger store {self.path}") from exc
        self._lock = threading.RLock()
        self._shared_reads = self.path in {":memory:", ""} or self.path.startswith("file:")
        self._readers = threading.local()
        self._reader_connections: list[
            tuple[weakref.ref[threading.Thread], sqlite3.Connection]
        ] = []
        self._closed = False
        try:
            self._head: BlockHeader | None = self._load_head()
        except (sqlite3.DatabaseError, ValueError, TypeError, KeyError, LedgerError) as exc:
            # The last block's header does not read back: a damaged file, not a bug.
            self._db.close()
            raise CorruptStore(
                f"ledger store {self.path} is damaged (its head block does not read: "
                f"{exc}); {RESTORE_HINT}"
            ) from exc
        if startup_check:
            self.pages_checked = clean is None
        if clean is not None and clean.head != (None if self._head is None else self._head.hash):
            # The file's stamp matched but its head is not the one closed: check it all.
            self.pages_checked = True
            try:
                self._quick_check()
            except (sqlite3.DatabaseError, StorageError) as exc:
                self._db.close()
                if isinstance(exc, StorageError):
                    raise
                raise CorruptStore(
                    f"ledger store {self.path} is damaged ({exc}); {RESTORE_HINT}"
                ) from exc

    def _check_wal(self) -> None:
        try:
            reading = read_store_wal(Path(self.path))
        except OSError as exc:
            raise StorageError(f"cannot read the write-ahead log of {self.path}: {exc}") from exc
        if reading.lost:
            raise CorruptStore(
                f"ledger store {self.path} is damaged: its write-ahead log lost "
                f"{reading.lost} committed frame(s) (truncated or overwritten; the "
                f"wal-index records {reading.index_frames}, the log holds "
                f"{reading.log_frames}); {RESTORE_HINT}"
            )

    def _quick_check(self) -> None:
        """``PRAGMA quick_check``: every page and b-tree is well formed (it reads the
        whole file, about a second per few hundred MB, but skips matching indexes
        against their tables, which ``integrity_check`` would add at several times
        the cost; the chain self-check covers the blocks' contents)."""
        rows = [str(row[0]) for row in self._db.execute("PRAGMA quick_check(5)").fetchall()]
        if rows != ["ok"]:
            raise CorruptStore(
                f"ledger store {self.path} is damaged (SQLite quick_check: "
                f"{'; '.join(rows)}); {RESTORE_HINT}"
            )

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='format_version'").fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO meta VALUES ('format_version', ?)", (str(FORMAT_VERSION),)
            )
        else:
            migrate(self._db, found=int(row[0]), wanted=FORMAT_VERSION)

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection (opened on first use)."""
        connection: sqlite3.Connection | None = getattr(self._readers, "connection", None)
        if connection is None:
            with self._lock:
                if self._closed:
                    raise StorageError(f"ledger store {self.path} is closed")
                try:
                    connection = sqlite3.connect(
                        self.path, check_same_thread=False, isolation_level=None
                    )
                    connection.execute("PRAGMA query_only=ON")
                except sqlite3.DatabaseError as exc:
                    raise StorageError(f"cannot read ledger store {self.path}: {exc}") from exc
                # A finished thread's connection is closed here, so threads that come
                # and go do not leave connections behind.
                live = []
                for owner, reader in self._reader_connections:
                    thread = owner()
                    if thread is None or not thread.is_alive():
                        reader.close()
                    else:
                        live.append((owner, reader))
                live.append((weakref.ref(threading.current_thread()), connection))
                self._reader_connections = live
            self._readers.connection = connection
        return connection

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Every row of a read query, on this thread's connection; the statement is
        finished before returning, so no read transaction stays open between calls."""
        if self._shared_reads:
            with self._lock:
                return self._db.execute(sql, params).fetchall()
        try:
            cursor = self._reader().execute(sql, params)
            try:
                return cursor.fetchall()
            finally:
                cursor.close()
        except sqlite3.ProgrammingError as exc:
            # The store was closed under this thread.
            raise StorageError(f"cannot read ledger store {self.path}: {exc}") from exc

    def _load_head(self) -> BlockHeader | None:
        row = self._db.execute("SELECT header FROM blocks ORDER BY height DESC LIMIT 1").fetchone()
        return None if row is None else BlockHeader.from_json(json.loads(row[0]))

    def committed_among(self, tx_ids: Sequence[str]) -> set[str]:
        """Those of ``tx_ids`` that appear in a committed block."""
        return committed_in(self._rows, tx_ids)

    def get_states(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], VersionedValue]:
        """Current values of several keys (absent ones left out), a few queries in all."""
        return states_in(self._rows, keys)

    def commit(self, commit: BlockCommit) -> None:
        """Write one block and everything it changes in one SQLite transaction."""
        block = commit.block
        header = block.header
        expected = self.height()
        if header.height != expected:
            raise StorageError(f"block {header.height} out of order: next is {expected}")
        rows = block_rows(commit)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO blocks (height, hash, header, body) VALUES (?, ?, ?, ?)",
                    (
                        header.height,
                        header.hash,
                        canonical_json_unchecked(header.to_json()).decode("ascii"),
                        commit.block_bytes,
                    ),
                )
                self._db.executemany("INSERT INTO txs VALUES (?, ?, ?, ?, ?)", rows.txs)
                self._db.executemany(
                    "INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?, ?)", rows.puts
                )
                self._db.executemany("DELETE FROM state WHERE ns=? AND key=?", rows.deletes)
                self._db.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?)", rows.history)
                self._db.executemany(
                    "INSERT OR REPLACE INTO log_nodes VALUES (?, ?, ?)", commit.log_append.nodes
                )
                if commit.stream_seq is not None:
                    # Same transaction as the block: a crash keeps both or neither.
                    self._db.execute(
                        "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                        (ORDERING_POSITION, str(commit.stream_seq)),
                    )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    # A failed ROLLBACK means SQLite rolled back already (a full disk
                    # can end the transaction itself): nothing of it is committed.
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise storage_error(exc, f"cannot commit block {header.height}") from exc
            self._head = header

    def raw(self) -> sqlite3.Connection:
        """The underlying connection, for offline audit and tests only."""
        return self._db

    def close(self) -> None:
        """Close the database and every thread's read connection; a store opened with
        ``startup_check`` then records its clean stop (``ledger.clean_stop``)."""
        with self._lock:
            was_closed, self._closed = self._closed, True
            for _, connection in self._reader_connections:
                connection.close()
            self._reader_connections.clear()
            self._db.close()
            if not was_closed and self._records_clean_stop:
                head = None if self._head is None else self._head.hash
                try:
                    record_clean_stop(Path(self.path), head=head)
                except OSError as exc:
                    # Without the record the next start reads every page: slower, safe.
                    log.warning("could not record the clean stop of %s: %s", self.path, exc)


Rows = Callable[[str, Sequence[Any]], list[Any]]
"""Runs a read query with its parameters and returns every row."""


def committed_in(
    rows: Rows, tx_ids: Sequence[str], *, before_log_index: int | None = None
) -> set[str]:
    """Those of ``tx_ids`` in the ``txs`` table that ``rows`` reads (only among its first
    ``before_log_index`` transactions, if given), a few queries in all."""
    found: set[str] = set()
    unique = list(dict.fromkeys(tx_ids))
    bound = () if before_log_index is None else (before_log_index,)
    for i in range(0, len(unique), _IN_CHUNK):
        chunk = unique[i : i + _IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT DISTINCT tx_id FROM txs WHERE tx_id IN ({marks})"  # noqa: S608 - placeholders only
        if bound:
            sql += " AND log_index < ?"
        found.update(row[0] for row in rows(sql, (*chunk, *bound)))
    return found


def states_in(rows: Rows, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], VersionedValue]:
    """Current values of several keys in the ``state`` table that ``rows`` reads (absent
    ones left out), a few queries in all."""
    found: dict[tuple[str, str], VersionedValue] = {}
    unique = list(dict.fromkeys(keys))
    step = _IN_CHUNK // 2
    for i in range(0, len(unique), step):
        chunk = unique[i : i + step]
        marks = ",".join("(?, ?)" for _ in chunk)
        params = tuple(part for pair in chunk for part in pair)
        sql = f"SELECT ns, key, value, height, idx FROM state WHERE (ns, key) IN (VALUES {marks})"  # noqa: S608 - placeholders only
        for ns, key, value, height, idx in rows(sql, params):
            found[(ns, key)] = VersionedValue(json.loads(value), (height, idx))
    return found


def _code(exc: sqlite3.Error) -> int:
    """The primary SQLite result code of ``exc`` (0 if it carries none)."""
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def storage_error(exc: sqlite3.Error, what: str) -> StorageError:
    """StorageFull for a full disk, StorageError otherwise, saying ``what`` failed."""
    if _code(exc) == SQLITE_FULL:
        return StorageFull(f"{what}: the disk is full; nothing of it was written")
    return StorageError(f"{what}: {exc}")
