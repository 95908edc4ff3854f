"""The store's format version and its migration path."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from healthledger.ledger.block import FORMAT_VERSION
from healthledger.ledger.errors import StorageError
from healthledger.ledger.migrations import migrate
from healthledger.ledger.sqlite_store import SqliteStore


def set_version(path: Path, version: int) -> None:
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value=? WHERE key='format_version'", (str(version),))
    db.commit()
    db.close()


def test_new_store_records_current_version(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "l.sqlite")
    row = store.raw().execute("SELECT value FROM meta WHERE key='format_version'").fetchone()
    assert int(row[0]) == FORMAT_VERSION
    store.close()


def test_newer_store_is_refused(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "l.sqlite").close()
    set_version(tmp_path / "l.sqlite", FORMAT_VERSION + 1)
    with pytest.raises(StorageError, match="newer"):
        SqliteStore(tmp_path / "l.sqlite")


def test_older_store_without_a_path_is_refused(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "l.sqlite").close()
    set_version(tmp_path / "l.sqlite", 0)
    with pytest.raises(StorageError, match="no migration from store format version 0"):
        SqliteStore(tmp_path / "l.sqlite")


def test_steps_apply_in_order_and_atomically(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "m.sqlite", isolation_level=None)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute("INSERT INTO meta VALUES ('format_version', '1')")
    db.execute("CREATE TABLE t (v INTEGER)")
    steps = {
        1: lambda c: c.execute("INSERT INTO t VALUES (1)"),
        2: lambda c: c.execute("INSERT INTO t VALUES (2)"),
    }
    migrate(db, found=1, wanted=3, steps=steps)
    assert [r[0] for r in db.execute("SELECT v FROM t")] == [1, 2]
    assert db.execute("SELECT value FROM meta").fetchone()[0] == "3"
    broken = {3: lambda c: c.execute("INSERT INTO missing VALUES (1)")}
    with pytest.raises(StorageError, match="failed"):
        migrate(db, found=3, wanted=4, steps=broken)
    assert db.execute("SELECT value FROM meta").fetchone()[0] == "3"
