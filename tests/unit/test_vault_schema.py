"""The vault file's format version and its conversion from the status-column format
(version 0: each settle rewrote a sealed row's ``status``), on real SQLite files."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from healthledger.crypto.canonical import canonical_json
from healthledger.crypto.envelope import KeyWrapper, VaultKey, seal
from healthledger.node.vault import Vault
from healthledger.node.vault_schema import VERSION, VaultFormatError, open_schema

SECRET = b"s" * 32

VERSION_0_SCHEMA = """
CREATE TABLE IF NOT EXISTS private (
    collection TEXT NOT NULL,
    key TEXT NOT NULL,
    tx_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'committed')),
    salt BLOB NOT NULL,
    sealed TEXT NOT NULL,
    wrapped_key TEXT,
    PRIMARY KEY (collection, key, tx_id)
);
CREATE INDEX IF NOT EXISTS private_by_tx ON private (tx_id);
"""
"""The vault's schema before format versions were kept, as that code created it."""

VERSION_0_ROWS: list[tuple[str, str, str, Any, bool]] = [
    # (key, tx_id, status, value, shredded), in the order they were staged. The
    # latest committed value of "k" is tx-a's, staged after tx-b's.
    ("k", "tx-b", "committed", {"n": 1}, False),
    ("k", "tx-a", "committed", {"n": 2}, False),
    ("k", "tx-c", "pending", {"n": 3}, False),
    ("gone", "tx-b", "committed", {"n": 0}, True),
    ("lost", "tx-d", "pending", {"n": 4, "pad": "x" * 5000}, False),
]


def salt_of(tx_id: str, key: str) -> bytes:
    return hashlib.sha256(f"{tx_id}\n{key}".encode()).digest()


def version_0_vault(path: Path, key: VaultKey, extra: int = 0) -> None:
    """A vault file as the status-column code wrote it: its schema, and rows sealed and
    wrapped as its ``stage`` did (``extra`` more committed 5 KB values)."""
    rows = list(VERSION_0_ROWS)
    rows += [(f"e{i}", f"tx-e{i}", "committed", {"pad": "y" * 5000}, False) for i in range(extra)]
    wrapper = KeyWrapper(key.public_bytes())
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(VERSION_0_SCHEMA)
    for name, tx_id, status, value, shredded in rows:
        sealed, data_key = seal(canonical_json(value), associated_data=f"org-a/c\n{name}".encode())
        wrapped = None if shredded else json.dumps(wrapper.wrap(data_key).to_json())
        db.execute(
            "INSERT OR REPLACE INTO private VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                "org-a/c",
                name,
                tx_id,
                status,
                salt_of(tx_id, name),
                json.dumps(sealed.to_json()),
                wrapped,
            ),
        )
    db.close()


def dump(path: Path) -> dict[str, Any]:
    """The file's version, schema and every row of every table."""
    db = sqlite3.connect(path)
    try:
        schema = db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        rows = {}
        for kind, name, sql in schema:
            if kind == "table":
                # A rowid table's rowids order a key's values; a WITHOUT ROWID one has none.
                columns = "*" if "WITHOUT ROWID" in sql else "rowid, *"
                rows[name] = db.execute(f"SELECT {columns} FROM {name}").fetchall()
        return {
            "version": db.execute("PRAGMA user_version").fetchone()[0],
            "schema": schema,
            "rows": rows,
        }
    finally:
        db.close()


def open_vault(path: Path, key: VaultKey) -> Vault:
    return Vault(path, org="org-a", key=key, secret=SECRET)


def test_a_new_vault_is_of_the_current_version(tmp_path: Path) -> None:
    open_vault(tmp_path / "v.sqlite", VaultKey.generate()).close()
    found = dump(tmp_path / "v.sqlite")
    assert found["version"] == VERSION == 1
    assert {name for _, name, _ in found["schema"]} >= {"private", "pending"}


def test_a_status_column_vault_is_converted_in_place(tmp_path: Path) -> None:
    path, key = tmp_path / "v.sqlite", VaultKey.generate()
    version_0_vault(path, key)
    before = dump(path)
    assert before["version"] == 0

    vault = open_vault(path, key)
    after = dump(path)
    assert after["version"] == VERSION
    assert "private_by_tx" not in {name for _, name, _ in after["schema"]}
    # The sealed rows keep their rowids (which order a key's values) and their bytes.
    assert after["rows"]["private"] == [
        (rowid, collection, name, tx_id, salt, sealed, wrapped)
        for rowid, collection, name, tx_id, _, salt, sealed, wrapped in before["rows"]["private"]
    ]
    assert sorted(after["rows"]["pending"]) == [
        ("tx-c", "org-a/c", "k"),
        ("tx-d", "org-a/c", "lost"),
    ]
    assert sorted(vault.pending_tx_ids()) == ["tx-c", "tx-d"]
    entry = vault.entry("org-a/c", "k")
    assert entry == {"tx_id": "tx-a", "salt": salt_of("tx-a", "k").hex(), "value": {"n": 2}}
    assert vault.read("org-a/c", "gone") is None  # shredded stays shredded
    assert vault.read("org-a/c", "lost") is None  # pending is not readable

    # The settle a crash left undone is redone as the peer's start does it.
    vault.settle_many([("tx-c", True), ("tx-d", False)])
    assert vault.read("org-a/c", "k") == {"n": 3}
    assert vault.pending_tx_ids() == []
    vault.close()
    reopened = open_vault(path, key)
    assert reopened.read("org-a/c", "k") == {"n": 3}
    assert reopened.read("org-a/c", "lost") is None
    reopened.close()
    settled = dump(path)
    assert settled["version"] == VERSION
    assert [row[2:4] for row in settled["rows"]["private"]] == [
        ("k", "tx-b"),
        ("k", "tx-a"),
        ("k", "tx-c"),
        ("gone", "tx-b"),
    ]
    assert settled["rows"]["pending"] == []
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    check.close()


def test_a_conversion_that_fails_midway_leaves_the_vault_as_it_was(tmp_path: Path) -> None:
    path, key = tmp_path / "v.sqlite", VaultKey.generate()
    version_0_vault(path, key, extra=20)
    before = dump(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=FULL")
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    # A disk that fills up while the rows are copied: the new tables fit, the copy of
    # 25 sealed values (two pages each) does not.
    db.execute(f"PRAGMA max_page_count={pages + 8}")
    with pytest.raises(VaultFormatError, match="unchanged: database or disk is full"):
        open_schema(db, path)
    assert not db.in_transaction
    db.close()
    assert dump(path) == before

    vault = open_vault(path, key)  # room again: it converts
    assert vault.read("org-a/c", "k") == {"n": 2}
    assert vault.read("org-a/c", "e19") == {"pad": "y" * 5000}
    assert sorted(vault.pending_tx_ids()) == ["tx-c", "tx-d"]
    vault.close()
    assert dump(path)["version"] == VERSION


def test_a_vault_of_a_newer_version_is_refused_and_left_alone(tmp_path: Path) -> None:
    path, key = tmp_path / "v.sqlite", VaultKey.generate()
    open_vault(path, key).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={VERSION + 1}")
    db.close()
    before = dump(path)
    with pytest.raises(VaultFormatError, match=f"version {VERSION + 1}, newer"):
        open_vault(path, key)
    assert dump(path) == before


def test_settling_rewrites_no_sealed_value(tmp_path: Path) -> None:
    """A valid settle deletes pending marks only; an invalid one deletes its values."""
    path, key = tmp_path / "v.sqlite", VaultKey.generate()
    vault = open_vault(path, key)
    vault.stage("tx1", "org-a/c", "k1", {"n": 1})
    vault.stage("tx2", "org-a/c", "k2", {"n": 2})
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(
        "CREATE TRIGGER no_rewrite BEFORE UPDATE ON private "
        "BEGIN SELECT RAISE(ABORT, 'a sealed value was rewritten'); END"
    )
    db.close()
    vault.settle_many([("tx1", True), ("tx2", False)])
    assert vault.read("org-a/c", "k1") == {"n": 1}
    assert vault.read("org-a/c", "k2") is None
    assert [row[2:4] for row in dump(path)["rows"]["private"]] == [("k1", "tx1")]
    vault.close()


def test_a_value_left_pending_by_a_stop_is_pending_when_reopened(tmp_path: Path) -> None:
    path, key = tmp_path / "v.sqlite", VaultKey.generate()
    vault = open_vault(path, key)
    vault.stage("tx1", "org-a/c", "k", {"n": 1}, durable=False)
    vault.close()  # writes what was staged; its block's settle never ran
    reopened = open_vault(path, key)
    assert reopened.pending_tx_ids() == ["tx1"]
    assert reopened.read("org-a/c", "k") is None
    reopened.settle("tx1", valid=True)
    assert reopened.read("org-a/c", "k") == {"n": 1}
    reopened.close()
