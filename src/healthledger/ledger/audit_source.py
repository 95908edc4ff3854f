"""The ledger store an offline audit reads: an SQLite file or a PostgreSQL database.

Either is read inside one read-only transaction for the whole audit, so the audit sees
one consistent snapshot even while a node commits to the same store. The audit writes
its queries once, with ``?`` for each parameter; :meth:`StoredDb.execute` answers a
short query, :meth:`StoredDb.stream` a long one without holding its rows in memory (a
cursor on the server, for PostgreSQL).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from itertools import count
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg.conninfo import make_conninfo

from healthledger.ledger.errors import StorageError
from healthledger.ledger.postgres_setup import redacted
from healthledger.ledger.store import is_postgres_location

LEDGER_TABLES = frozenset({"meta", "blocks", "txs", "state", "history", "log_nodes"})
"""The tables every ledger store has."""

DB_ERRORS: tuple[type[Exception], ...] = (sqlite3.DatabaseError, psycopg.Error)
"""What reading either kind of store can raise."""

STREAM_ROWS = 2048
"""Rows a PostgreSQL server cursor sends at a time."""


class Rows(Protocol):
    """The rows of one query, read as they are needed."""

    def fetchone(self) -> Any: ...

    def fetchmany(self, size: int) -> list[Any]: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class StoredDb:
    """A ledger store opened read-only for an audit."""

    location: str
    """The file's path or the database's URL without its password, for messages."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """The rows of a query whose answer is small."""
        raise NotImplementedError

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """The rows of a query over a whole table, read as they are needed."""
        raise NotImplementedError

    def rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Every row of a short query."""
        return self.execute(sql, params).fetchall()

    def close(self) -> None:
        """End the read transaction and close."""
        raise NotImplementedError


def open_store(location: Path | str) -> StoredDb:
    """Open the SQLite file or PostgreSQL database at ``location`` for an audit;
    StorageError if it cannot be read as a ledger store."""
    if is_postgres_location(location):
        return _PostgresDb(str(location))
    return _SqliteDb(location)


class _SqliteDb(StoredDb):
    def __init__(self, path: Path | str) -> None:
        resolved = Path(path).resolve()
        if not resolved.is_file():
            raise StorageError(f"no ledger store at {path}")
        self.location = str(path)
        try:
            self._db = sqlite3.connect(
                resolved.as_uri() + "?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open ledger store {path}: {exc}") from exc
        try:
            # One read transaction for the whole audit.
            self._db.execute("BEGIN")
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StorageError(f"{path} is not a readable ledger store: {exc}") from exc
        _check_tables(self, tables)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        return self._db.execute(sql, params)

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        # SQLite's cursors step through their rows as they are fetched.
        return self._db.execute(sql, params)

    def close(self) -> None:
        self._db.close()


class _PostgresDb(StoredDb):
    def __init__(self, url: str) -> None:
        self.location = redacted(url)
        self._names = count()
        try:
            self._db = psycopg.connect(make_conninfo(url, connect_timeout=10))
        except psycopg.Error as exc:
            raise StorageError(f"cannot open ledger store {self.location}: {exc}") from exc
        try:
            # One snapshot for the whole audit, and nothing written through it.
            self._db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            tables = {
                row[0]
                for row in self._db.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema()"
                )
            }
        except psycopg.Error as exc:
            self._db.close()
            raise StorageError(f"{self.location} is not a readable ledger store: {exc}") from exc
        _check_tables(self, tables)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        return self._db.execute(_marks(sql), params)

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        cursor = self._db.cursor(name=f"audit_{next(self._names)}")
        cursor.itersize = STREAM_ROWS
        cursor.execute(_marks(sql), params)
        return cursor

    def close(self) -> None:
        self._db.close()


def _marks(sql: str) -> str:
    return sql.replace("?", "%s")


def _check_tables(db: StoredDb, tables: set[str]) -> None:
    missing = LEDGER_TABLES - tables
    if missing:
        db.close()
        raise StorageError(f"{db.location} is not a ledger store: no table(s) {sorted(missing)}")
