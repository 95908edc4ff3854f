"""The vault file's tables, its format version and the path between versions.

A vault records its format version in SQLite's ``PRAGMA user_version``. Version 1
keeps each sealed value in ``private``, written once when it is staged, and marks a
value not yet settled with a small row of ``pending`` of its own: settling a block
deletes those marks (a valid transaction) or the values and their marks (an invalid
one) and never rewrites a sealed value. Version 0 is a vault made before versions were
kept, whose ``private`` rows carried a ``status`` ('pending' or 'committed') that each
settle rewrote, so each value's pages were written a second time.

Opening a vault of an older version converts it in place in one SQLite transaction,
committed with the connection's ``synchronous`` (FULL for a vault): all of it, synced,
or none of it. A vault of a newer version than this code knows is refused rather than
misread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path

from healthledger.node.errors import NodeError

VERSION = 1
"""The vault format this code writes (``PRAGMA user_version``)."""

TABLES = (
    """CREATE TABLE private (
    collection TEXT NOT NULL,
    key TEXT NOT NULL,
    tx_id TEXT NOT NULL,
    salt BLOB NOT NULL,
    sealed TEXT NOT NULL,
    wrapped_key TEXT,
    PRIMARY KEY (collection, key, tx_id)
)""",
    # Keyed by transaction first: a settle deletes a transaction's marks by their key's
    # prefix, and a read finds one value's mark by the whole key.
    """CREATE TABLE pending (
    tx_id TEXT NOT NULL,
    collection TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (tx_id, collection, key)
) WITHOUT ROWID""",
)
"""The tables of a version-1 vault."""


class VaultFormatError(NodeError):
    """A vault file is of a format this code cannot open, or converting it failed."""


def _from_status_column(db: sqlite3.Connection) -> None:
    """Version 0 to 1: each ``status='pending'`` becomes a mark in ``pending``; the
    sealed rows are copied with their rowids, which order a key's values."""
    db.execute("ALTER TABLE private RENAME TO private_v0")
    for table in TABLES:
        db.execute(table)
    db.execute(
        "INSERT INTO private (rowid, collection, key, tx_id, salt, sealed, wrapped_key) "
        "SELECT rowid, collection, key, tx_id, salt, sealed, wrapped_key FROM private_v0 "
        "ORDER BY rowid"
    )
    db.execute(
        "INSERT INTO pending (tx_id, collection, key) "
        "SELECT tx_id, collection, key FROM private_v0 WHERE status = 'pending'"
    )
    db.execute("DROP TABLE private_v0")  # and its index private_by_tx


Migration = Callable[[sqlite3.Connection], None]

MIGRATIONS: Mapping[int, Migration] = {0: _from_status_column}
"""Step from format N to N+1, keyed by N."""


def _version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _is_empty(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is None


def open_schema(
    db: sqlite3.Connection,
    path: Path | str,
    *,
    steps: Mapping[int, Migration] = MIGRATIONS,
) -> None:
    """Create the tables of a new vault file, or bring an older vault to ``VERSION`` in
    one transaction; VaultFormatError, leaving the file as it was, if it cannot.
    ``db`` is in autocommit mode (``isolation_level=None``)."""
    if _version(db) == VERSION:
        return
    try:
        db.execute("BEGIN IMMEDIATE")
        # Read again under the write lock: another connection may have converted it.
        found = _version(db)
        if found > VERSION:
            raise VaultFormatError(
                f"vault {path} is of format version {found}, newer than this "
                f"healthledger's ({VERSION}): upgrade healthledger to open it"
            )
        if found < VERSION:
            if found == 0 and _is_empty(db):
                for table in TABLES:
                    db.execute(table)
            elif any(v not in steps for v in range(found, VERSION)):
                raise VaultFormatError(
                    f"vault {path} is of format version {found}, from which no "
                    f"conversion to {VERSION} exists"
                )
            else:
                for version in range(found, VERSION):
                    steps[version](db)
            db.execute(f"PRAGMA user_version = {VERSION}")
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise VaultFormatError(
            f"vault {path} could not be brought to format version {VERSION} and is unchanged: {exc}"
        ) from exc
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
