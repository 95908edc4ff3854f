"""PostgreSQL implementation of the ledger store, for a peer that outgrows one SQLite file.

The same tables as the SQLite store (``ledger.sqlite_store``), in the database (and
schema) its connection URL names. A block, its transaction index, its state changes,
history rows and log nodes are written in one PostgreSQL transaction; the commit is
acknowledged once the server has flushed its write-ahead log, so the store refuses a
server (or a URL's options) with ``fsync`` or ``synchronous_commit`` switched off:
durable means the same here as with SQLite's ``synchronous=FULL``. A commit the
server's disk has no room for raises :class:`StorageFull`, a page the server finds
damaged :class:`CorruptStore`, a server that cannot be reached (or went away)
:class:`StoreUnavailable`; in each case nothing of the block is committed. When the
connection drops during a commit, whether the server committed it is asked of the
server once it answers again: a block it holds is the block committed, never written
twice. Every connection is opened again on its next use after a drop, so a restarted
server is used again without restarting the node.

Keys are stored with the "C" collation, so a range of keys is in the byte order the
SQLite store and the contracts use, whatever the database's locale.

Reads do not wait for a commit: each reading thread has its own connection in
autocommit mode, and every statement sees the last committed block (READ COMMITTED).

What stays in the data folder whichever store a peer uses: the keystore, the
private-data vaults, the staff store, checkpoints and the applications' read models
(SQLite files of their own); only the ledger (blocks, transactions, world state, key
history, the global log's nodes) moves to PostgreSQL.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import make_conninfo

from healthledger.crypto.canonical import canonical_json_unchecked
from healthledger.ledger.block import FORMAT_VERSION, BlockHeader
from healthledger.ledger.errors import (
    CorruptStore,
    LedgerError,
    StorageError,
    StorageFull,
    StoreUnavailable,
)
from healthledger.ledger.migrations import check_format
from healthledger.ledger.postgres_setup import (
    LEDGER_TABLES,
    first_line,
    held_besides_ledger,
    redacted,
)
from healthledger.ledger.sql_reads import ORDERING_POSITION, SqlReads, block_rows
from healthledger.ledger.state import VersionedValue
from healthledger.ledger.store import BlockCommit

RESTORE_HINT = (
    "restore it before serving: join again from a snapshot of a healthy peer "
    "(healthledger network join, operator guide 8.2) or restore the database from a "
    "backup (pg_dump / pg_basebackup, operator guide 4.2)"
)
"""What to do about a damaged store, in the one line that reports it."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    height BIGINT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    header TEXT NOT NULL,
    body BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS txs (
    log_index BIGINT PRIMARY KEY,
    tx_id TEXT NOT NULL,
    height BIGINT NOT NULL,
    idx INTEGER NOT NULL,
    code TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS txs_by_id ON txs (tx_id);
CREATE TABLE IF NOT EXISTS state (
    ns TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    value TEXT NOT NULL,
    height BIGINT NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (ns, key)
);
CREATE TABLE IF NOT EXISTS history (
    ns TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    height BIGINT NOT NULL,
    idx INTEGER NOT NULL,
    tx_id TEXT NOT NULL,
    value TEXT,
    PRIMARY KEY (ns, key, height, idx)
);
CREATE TABLE IF NOT EXISTS log_nodes (
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);
"""

_SCHEMA_LOCK = 0x686C6564
"""Advisory lock held while creating the tables, so two processes opening one new
database do not race on CREATE TABLE IF NOT EXISTS."""

_DURABLE_SETTINGS = {"fsync": "on", "synchronous_commit": "on"}
"""Server settings an acknowledged block needs (``remote_apply``/``remote_write`` with a
standby are stronger or equal and accepted too)."""


class PostgresStore(SqlReads):
    """A ledger store in one PostgreSQL database (or one schema of it)."""

    MARK = "%s"
    HEADER_TIMESTAMP = "(b.header::json->>'timestamp')::bigint"

    def __init__(
        self, url: str, *, connect_timeout_s: float = 10.0, outcome_wait_s: float = 30.0
    ) -> None:
        """Connect to ``url`` (a libpq connection URL), create the tables if the database
        has none, and read the head; StorageError if the server cannot be reached or is
        not durable, CorruptStore if the head block does not read. ``outcome_wait_s``:
        how long a commit whose connection dropped waits for the server to say whether
        it committed."""
        self.url = url
        self.outcome_wait_s = outcome_wait_s
        self.location = redacted(url)
        try:
            self._conninfo = make_conninfo(url, connect_timeout=max(1, round(connect_timeout_s)))
        except psycopg.ProgrammingError as exc:
            raise StorageError(
                f"{self.location} is not a PostgreSQL connection URL: {exc}"
            ) from exc
        self._db = self._connect()
        try:
            self._check_server()
            with self._db.transaction():
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                self._db.execute(SCHEMA)
                self._check_version()
            self._head: BlockHeader | None = self._load_head()
        except psycopg.Error as exc:
            self._db.close()
            raise storage_error(exc, f"cannot open ledger store {self.location}") from exc
        except StorageError:
            self._db.close()
            raise
        except (ValueError, TypeError, KeyError, LedgerError) as exc:
            # The last block's header does not read back: damaged, not a bug.
            self._db.close()
            raise CorruptStore(
                f"ledger store {self.location} is damaged (its head block does not read: "
                f"{exc}); {RESTORE_HINT}"
            ) from exc
        self._lock = threading.RLock()
        self._readers = threading.local()
        self._reader_connections: list[
            tuple[weakref.ref[threading.Thread], psycopg.Connection[Any]]
        ] = []
        self._closed = False
        self._unsure = False
        """A commit's outcome could not be learnt (the server went away during it and
        did not answer again at once): settled before the next commit."""

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(
                f"cannot reach ledger store {self.location}: {first_line(exc)}"
            ) from exc
        except psycopg.Error as exc:
            raise StorageError(
                f"cannot open ledger store {self.location}: {first_line(exc)}"
            ) from exc

    def _check_server(self) -> None:
        """Refuse a server that would acknowledge a commit before it is on disk, or whose
        text encoding cannot hold every state value."""
        for name, wanted in _DURABLE_SETTINGS.items():
            row = self._db.execute(f"SHOW {name}").fetchone()  # names from the table above
            found = "" if row is None else str(row[0])
            if name == "synchronous_commit" and found in {"remote_apply", "remote_write"}:
                continue
            if found != wanted:
                raise StorageError(
                    f"ledger store {self.location}: the server has {name}={found}; a block is "
                    f"acknowledged only once it is on disk, which needs {name}={wanted}"
                )
        row = self._db.execute("SHOW server_encoding").fetchone()
        if row is None or str(row[0]).upper() not in {"UTF8", "UTF-8"}:
            raise StorageError(
                f"ledger store {self.location}: the database's encoding is "
                f"{None if row is None else row[0]}, not UTF8"
            )

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='format_version'").fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO meta VALUES ('format_version', %s)", (str(FORMAT_VERSION),)
            )
        else:
            check_format(found=int(row[0]), wanted=FORMAT_VERSION)

    def _reader(self) -> psycopg.Connection[Any]:
        """This thread's read connection (opened on first use)."""
        connection: psycopg.Connection[Any] | None = getattr(self._readers, "connection", None)
        if connection is None or connection.closed:
            with self._lock:
                if self._closed:
                    raise StorageError(f"ledger store {self.location} is closed")
                connection = self._connect()
                # A finished thread's connection is closed here, so threads that come
                # and go do not leave connections behind.
                live = []
                for owner, reader in self._reader_connections:
                    thread = owner()
                    if thread is None or not thread.is_alive() or reader.closed:
                        reader.close()
                    else:
                        live.append((owner, reader))
                live.append((weakref.ref(threading.current_thread()), connection))
                self._reader_connections = live
            self._readers.connection = connection
        return connection

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Every row of a read query, on this thread's connection; a connection the
        server dropped (a restart) is opened again and the query tried once more."""
        for attempt in (1, 2):
            connection = self._reader()
            try:
                return connection.execute(sql, params, prepare=True).fetchall()
            except psycopg.Error as exc:
                if attempt == 1 and _lost(exc, connection):
                    connection.close()
                    continue
                raise storage_error(
                    exc, f"cannot read ledger store {self.location}", connection
                ) from exc
        raise AssertionError("unreachable")

    def _load_head(self) -> BlockHeader | None:
        row = self._db.execute("SELECT header FROM blocks ORDER BY height DESC LIMIT 1").fetchone()
        return None if row is None else BlockHeader.from_json(json.loads(row[0]))

    def committed_among(self, tx_ids: Sequence[str]) -> set[str]:
        """Those of ``tx_ids`` that appear in a committed block, in one query."""
        if not tx_ids:
            return set()
        rows = self._rows(
            "SELECT DISTINCT tx_id FROM txs WHERE tx_id = ANY(%s)", (list(dict.fromkeys(tx_ids)),)
        )
        return {row[0] for row in rows}

    def get_states(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], VersionedValue]:
        """Current values of several keys (absent ones left out), in one query."""
        if not keys:
            return {}
        unique = list(dict.fromkeys(keys))
        rows = self._rows(
            "SELECT s.ns, s.key, s.value, s.height, s.idx FROM state s "
            "JOIN unnest(%s::text[], %s::text[]) AS k(ns, key) "
            'ON s.ns = k.ns COLLATE "C" AND s.key = k.key COLLATE "C"',
            ([ns for ns, _ in unique], [key for _, key in unique]),
        )
        return {
            (ns, key): VersionedValue(json.loads(value), (height, idx))
            for ns, key, value, height, idx in rows
        }

    def commit(self, commit: BlockCommit) -> None:
        """Write one block and everything it changes in one PostgreSQL transaction,
        acknowledged once the server has flushed it to disk."""
        block = commit.block
        header = block.header
        expected = self.height()
        if header.height != expected:
            raise StorageError(f"block {header.height} out of order: next is {expected}")
        rows = block_rows(commit)
        nodes = {(level, index): node for level, index, node in commit.log_append.nodes}
        with self._lock:
            if self._closed:
                raise StorageError(f"ledger store {self.location} is closed")
            if self._db.closed:
                self._db = self._connect()
            if self._unsure:
                self._settle_unsure()
            try:
                # One statement per table, sent together (pipeline mode): a block costs
                # about one round trip to the server and its WAL flush at COMMIT.
                with self._db.pipeline(), self._db.transaction(), self._db.cursor() as cur:
                    cur.execute(
                        "INSERT INTO blocks (height, hash, header, body) VALUES (%s, %s, %s, %s)",
                        (
                            header.height,
                            header.hash,
                            canonical_json_unchecked(header.to_json()).decode("ascii"),
                            commit.block_bytes,
                        ),
                    )
                    cur.execute(
                        "INSERT INTO txs SELECT * FROM unnest(%s::bigint[], %s::text[], "
                        "%s::bigint[], %s::integer[], %s::text[])",
                        _columns(rows.txs, 5),
                    )
                    if rows.history:
                        cur.execute(
                            "INSERT INTO history SELECT * FROM unnest(%s::text[], %s::text[], "
                            "%s::bigint[], %s::integer[], %s::text[], %s::text[])",
                            _columns(rows.history, 6),
                        )
                    if rows.puts:
                        cur.execute(
                            "INSERT INTO state SELECT * FROM unnest(%s::text[], %s::text[], "
                            "%s::text[], %s::bigint[], %s::integer[]) "
                            "ON CONFLICT (ns, key) DO UPDATE SET value=EXCLUDED.value, "
                            "height=EXCLUDED.height, idx=EXCLUDED.idx",
                            _columns(rows.puts, 5),
                        )
                    if rows.deletes:
                        cur.execute(
                            "DELETE FROM state s "
                            "USING unnest(%s::text[], %s::text[]) AS d(ns, key) "
                            'WHERE s.ns = d.ns COLLATE "C" AND s.key = d.key COLLATE "C"',
                            _columns(rows.deletes, 2),
                        )
                    if nodes:
                        cur.execute(
                            "INSERT INTO log_nodes SELECT * FROM unnest(%s::integer[], "
                            "%s::bigint[], %s::bytea[]) "
                            "ON CONFLICT (level, idx) DO UPDATE SET hash=EXCLUDED.hash",
                            _columns([(*place, node) for place, node in nodes.items()], 3),
                        )
                    if commit.stream_seq is not None:
                        # Same transaction as the block: a crash keeps both or neither.
                        cur.execute(
                            "INSERT INTO meta VALUES (%s, %s) "
                            "ON CONFLICT (key) DO UPDATE SET value=EXCLUDED.value",
                            (ORDERING_POSITION, str(commit.stream_seq)),
                        )
            except psycopg.Error as exc:
                if not _lost(exc, self._db) or not self._landed(header):
                    raise storage_error(
                        exc, f"cannot commit block {header.height}", self._db
                    ) from exc
            self._head = header

    def _settle_unsure(self) -> None:
        """After a commit whose outcome the server could not be asked about: go on
        only if the server's head is the one this store knows (the commit did not
        land); if it did land, the node's view of the chain is behind the store's, and
        only a restart (which reads the head afresh) may go on from it."""
        try:
            row = self._db.execute("SELECT max(height) FROM blocks").fetchone()
        except psycopg.Error as exc:
            raise storage_error(exc, f"cannot read ledger store {self.location}", self._db) from exc
        stored = -1 if row is None or row[0] is None else int(row[0])
        if stored != self.height() - 1:
            raise StorageError(
                f"ledger store {self.location} holds block {stored}, committed while the "
                "server did not answer: restart the node to continue from it"
            )
        self._unsure = False

    def _landed(self, header: BlockHeader) -> bool:
        """Whether the server holds block ``header`` after the connection dropped during
        its commit (the commit may have been the server's last act). The server is
        asked until it answers, for up to ``outcome_wait_s`` (a restart takes seconds);
        if it never does, the outcome stays unknown (settled before the next commit)."""
        deadline = time.monotonic() + self.outcome_wait_s
        pause = 0.05
        while True:
            try:
                self._db.close()
                self._db = self._connect()
                row = self._db.execute(
                    "SELECT hash FROM blocks WHERE height=%s", (header.height,)
                ).fetchone()
            except (psycopg.Error, StorageError):
                if time.monotonic() + pause > deadline:
                    self._unsure = True
                    return False
                time.sleep(pause)
                pause = min(1.0, pause * 2)
                continue
            return row is not None and row[0] == header.hash

    def install(self, ledger_file: Path) -> None:
        """Copy every row of the SQLite ledger ``ledger_file`` (a verified snapshot's
        replay) into this store, table by table in one transaction, acknowledged once
        the server has flushed it; StorageError, with nothing copied, if this store
        already holds a block or its database anything else."""
        with self._lock:
            source = sqlite3.connect(f"file:{ledger_file}?mode=ro", uri=True)
            try:
                with self._db.transaction():
                    self._db.execute(
                        "LOCK TABLE meta, blocks, txs, state, history, log_nodes IN EXCLUSIVE MODE"
                    )
                    held = held_besides_ledger(self._db)
                    if held is not None:
                        raise StorageError(
                            f"{self.location} is not empty (it holds {held}): a ledger is "
                            "installed only into a new database"
                        )
                    for key, value in source.execute("SELECT key, value FROM meta"):
                        if key == "format_version":
                            check_format(found=int(value), wanted=FORMAT_VERSION)
                            continue
                        self._db.execute("INSERT INTO meta VALUES (%s, %s)", (key, value))
                    for table, columns in LEDGER_TABLES:
                        copy_rows = sql.SQL("COPY {} ({}) FROM STDIN").format(
                            sql.Identifier(table), sql.SQL(columns)
                        )
                        with self._db.cursor() as cur, cur.copy(copy_rows) as copy:
                            for row in source.execute(f"SELECT {columns} FROM {table}"):  # noqa: S608 - names from the table above
                                copy.write_row(row)
                self._head = self._load_head()
            except psycopg.Error as exc:
                raise storage_error(exc, f"cannot install the ledger into {self.location}") from exc
            except sqlite3.Error as exc:
                raise StorageError(f"cannot read the ledger {ledger_file}: {exc}") from exc
            finally:
                source.close()

    def close(self) -> None:
        """Close the connection and every thread's read connection."""
        with self._lock:
            self._closed = True
            for _, connection in self._reader_connections:
                connection.close()
            self._reader_connections.clear()
            self._db.close()


def _lost(exc: psycopg.Error, connection: psycopg.Connection[Any]) -> bool:
    """Whether ``exc`` means the connection to the server is gone (the server stopped,
    restarted or cannot be reached), rather than a refusal of the statement."""
    if not isinstance(exc, psycopg.OperationalError) or isinstance(exc, pg_errors.DiskFull):
        return False
    state = exc.sqlstate or ""
    return connection.closed or not state or state.startswith(("08", "57P"))


def storage_error(
    exc: psycopg.Error, what: str, connection: psycopg.Connection[Any] | None = None
) -> StorageError:
    """StorageFull for a full disk, CorruptStore for damaged data, StoreUnavailable for
    a server out of reach, StorageError otherwise, saying ``what`` failed."""
    if isinstance(exc, pg_errors.DiskFull):
        return StorageFull(f"{what}: the server's disk is full; nothing of it was written")
    if connection is not None and _lost(exc, connection):
        return StoreUnavailable(
            f"{what}: the PostgreSQL server cannot be reached ({first_line(exc)}); nothing "
            "of it was committed, and the store connects again on its next use"
        )
    if isinstance(exc, pg_errors.DataCorrupted | pg_errors.IndexCorrupted):
        return CorruptStore(f"{what}: the database is damaged ({first_line(exc)}); {RESTORE_HINT}")
    return StorageError(f"{what}: {first_line(exc)}")


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """``rows`` as ``width`` column lists, one array parameter each (``unnest``)."""
    return [[row[i] for row in rows] for i in range(width)]
