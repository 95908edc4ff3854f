"""On-disk format versions of the SQLite store and the path between them.

A store records its format version in ``meta.format_version``. Opening a store of
an older version applies each step ``N -> N+1`` in one SQLite transaction; a store
of a newer version than this code knows is refused rather than misread. Version 1
is the first format, so no step exists yet: the next format change adds
``MIGRATIONS[1]`` and bumps ``ledger.block.FORMAT_VERSION``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping

from healthledger.ledger.errors import StorageError

Migration = Callable[[sqlite3.Connection], None]

MIGRATIONS: Mapping[int, Migration] = {}
"""Step from format N to N+1, keyed by N."""


def check_format(*, found: int, wanted: int, steps: Mapping[int, object] = MIGRATIONS) -> None:
    """StorageError unless a store of format ``found`` can be brought to ``wanted`` by
    ``steps`` (any store: the PostgreSQL one has no step yet either)."""
    if found > wanted:
        raise StorageError(
            f"store format version {found} is newer than this healthledger ({wanted}): upgrade"
        )
    missing = [v for v in range(found, wanted) if v not in steps]
    if missing:
        raise StorageError(f"no migration from store format version {missing[0]}")


def migrate(
    db: sqlite3.Connection,
    *,
    found: int,
    wanted: int,
    steps: Mapping[int, Migration] = MIGRATIONS,
) -> None:
    """Bring a store from format ``found`` to ``wanted`` atomically, or raise StorageError."""
    check_format(found=found, wanted=wanted, steps=steps)
    if found == wanted:
        return
    try:
        db.execute("BEGIN IMMEDIATE")
        for version in range(found, wanted):
            steps[version](db)
        db.execute("UPDATE meta SET value=? WHERE key='format_version'", (str(wanted),))
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        db.execute("ROLLBACK")
        raise StorageError(f"migration from format {found} failed: {exc}") from exc
