"""The parts behind the peer's throughput: the verified-signature memo, the block
overlay's bookkeeping, the store's batch reads and per-thread read connections, and
the vault's group commit. Each is checked on real keys and real SQLite files."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from healthledger.crypto.envelope import VaultKey
from healthledger.crypto.errors import SignatureError
from healthledger.crypto.keys import SigningKey, VerifiedSignatures
from healthledger.ledger.errors import StorageError
from healthledger.ledger.sqlite_store import SqliteStore
from healthledger.ledger.state import OverlayState, StateUpdate, VersionedValue
from healthledger.ledger.store import LedgerStore, is_postgres_location, open_store
from healthledger.node.vault import Vault
from tests.support.postgres import postgres_server, store_location

__all__ = ["store_location"]

# --- VerifiedSignatures -------------------------------------------------------------


def test_memo_accepts_a_good_signature_again_and_nothing_else() -> None:
    key = SigningKey.from_seed(bytes(range(32)))
    public = key.key.public_key()
    memo = VerifiedSignatures()
    signature = key.sign(b"message")
    memo.verify(public, signature, b"message")
    memo.verify(public, signature, b"message")  # remembered
    with pytest.raises(SignatureError):
        memo.verify(public, signature, b"messagf")
    other = SigningKey.from_seed(bytes(32)).key.public_key()
    with pytest.raises(SignatureError):
        memo.verify(other, signature, b"message")
    assert memo.check(public, signature, b"message")
    assert not memo.check(public, bytes(64), b"message")


def test_memo_refuses_a_signature_that_only_shifts_bytes_into_the_message() -> None:
    key = SigningKey.from_seed(bytes(range(32)))
    public = key.key.public_key()
    memo = VerifiedSignatures()
    signature = key.sign(b"xmessage")
    memo.verify(public, signature, b"xmessage")
    # Same concatenation key || signature || message, different split.
    with pytest.raises(SignatureError, match="64 bytes"):
        memo.verify(public, signature + b"x", b"message")


def test_memo_failures_are_not_remembered_as_successes() -> None:
    key = SigningKey.from_seed(bytes(range(32)))
    public = key.key.public_key()
    memo = VerifiedSignatures(max_entries=2)
    for _ in range(2):
        with pytest.raises(SignatureError):
            memo.verify(public, bytes(64), b"m")
    for i in range(5):  # past the bound: starts afresh, still correct
        message = bytes([i])
        memo.verify(public, key.sign(message), message)


def test_a_signature_made_here_is_remembered_under_its_own_key_only() -> None:
    key = SigningKey.from_seed(bytes(range(32)))
    memo = VerifiedSignatures()
    signature = key.sign(b"endorsed")
    memo.made(key.public_bytes(), signature, b"endorsed")
    memo.verify(key.key.public_key(), signature, b"endorsed")
    assert memo.verified == 0  # found, not verified again
    # Checked against another key (a certificate naming another), it is verified.
    other = SigningKey.from_seed(bytes(32)).key.public_key()
    with pytest.raises(SignatureError):
        memo.verify(other, signature, b"endorsed")
    with pytest.raises(SignatureError):
        memo.verify(key.key.public_key(), signature, b"endorsef")
    # Malformed sizes are not remembered.
    memo.made(key.public_bytes(), bytes(63), b"m")
    assert not memo.check(key.key.public_key(), bytes(63), b"m")


# --- OverlayState ------------------------------------------------------------------


def _update(ns: str, key: str, value: object, deleted: bool = False) -> StateUpdate:
    return StateUpdate(ns, key, value, deleted, (1, 0), "tx")


def test_overlay_knows_which_keys_the_block_wrote(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ledger.sqlite")
    overlay = OverlayState(store)
    assert overlay.base is store
    assert not overlay.touches("notebook")
    overlay.apply(_update("notebook", "b", 1))
    overlay.apply(_update("notebook", "~policy/k", "'a.peer'"))
    overlay.apply(_update("notebook", "b", 2))
    assert overlay.touches("notebook") and not overlay.touches("membership")
    assert overlay.wrote_between("notebook", "~policy/", "~policy0")
    assert overlay.wrote_between("notebook", "a", "c")
    assert not overlay.wrote_between("notebook", "c", "~policy/")
    assert not overlay.wrote_between("other", "", "~")
    store.close()


def test_overlay_prefetched_values_stand_for_the_base_until_written(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ledger.sqlite")
    overlay = OverlayState(store)
    known = VersionedValue({"v": 1}, (3, 0))
    overlay.prefetch([("ns", "a"), ("ns", "gone")], {("ns", "a"): known})
    assert overlay.get_state("ns", "a") == known
    assert overlay.get_state("ns", "gone") is None
    overlay.apply(_update("ns", "a", {"v": 2}))
    state = overlay.get_state("ns", "a")
    assert state is not None and state.value == {"v": 2}
    overlay.apply(_update("ns", "a", None, deleted=True))
    assert overlay.get_state("ns", "a") is None
    store.close()


# --- the ledger store (SQLite and PostgreSQL) ------------------------------------


ROWS = (
    "INSERT INTO txs VALUES (0, 'tx-a', 0, 0, 'VALID')",
    "INSERT INTO txs VALUES (1, 'tx-b', 0, 1, 'MVCC_READ_CONFLICT')",
    "INSERT INTO state VALUES ('ns', 'a', '{\"v\":1}', 0, 0)",
    "INSERT INTO state VALUES ('ns', 'b', '2', 0, 1)",
    "INSERT INTO state VALUES ('other', 'a', '3', 0, 2)",
)


def _insert_rows(store: LedgerStore, location: str) -> None:
    """A few index and state rows, written beside the store as a commit would."""
    for sql in ROWS:
        if is_postgres_location(location):
            postgres_server().execute(location, sql)
        else:
            assert isinstance(store, SqliteStore)
            store.raw().execute(sql)


def test_store_batch_reads_match_single_reads(store_location: str) -> None:
    store = open_store(store_location)
    _insert_rows(store, store_location)
    ids = ["tx-a", "tx-missing", "tx-b", "tx-a"] + [f"x{i}" for i in range(1200)]
    assert store.committed_among(ids) == {"tx-a", "tx-b"}
    assert store.committed_among([]) == set()
    keys = [("ns", "a"), ("ns", "b"), ("ns", "c"), ("other", "a")] + [
        ("ns", f"k{i}") for i in range(700)
    ]
    found = store.get_states(keys)
    assert found == {pair: v for pair in keys if (v := store.get_state(*pair)) is not None}
    assert found[("ns", "a")] == VersionedValue({"v": 1}, (0, 0))
    assert len(found) == 3
    assert store.get_states([]) == {}
    store.close()


def test_store_reads_from_many_threads_and_refuses_after_close(store_location: str) -> None:
    store = open_store(store_location)
    _insert_rows(store, store_location)
    seen: list[object] = []

    def read() -> None:
        seen.append(store.get_state("ns", "b"))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [VersionedValue(2, (0, 1))] * 8
    # Readers of finished threads are closed when the next one opens.
    read()
    store.close()
    with pytest.raises(StorageError):
        store.get_state("ns", "b")


def test_in_memory_store_shares_its_one_connection() -> None:
    store = SqliteStore(":memory:")
    _insert_rows(store, ":memory:")
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(store.get_states([("ns", "b")])))
    thread.start()
    thread.join()
    assert result == [{("ns", "b"): VersionedValue(2, (0, 1))}]
    store.close()


# --- Vault group commit -------------------------------------------------------------


def _vault(path: Path) -> Vault:
    return Vault(path, org="org-a", key=VaultKey.generate(), secret=b"s" * 32)


def _rows_on_disk(path: Path) -> list[tuple[str, str]]:
    """Each value on disk (transaction, 'pending' while it has a pending mark, else
    'committed'), in staging order."""
    db = sqlite3.connect(path)
    try:
        return db.execute(
            "SELECT p.tx_id, CASE WHEN m.tx_id IS NULL THEN 'committed' ELSE 'pending' END "
            "FROM private AS p LEFT JOIN pending AS m USING (tx_id, collection, key) "
            "ORDER BY p.rowid"
        ).fetchall()
    finally:
        db.close()


def test_deferred_stages_reach_the_file_in_one_sync(tmp_path: Path) -> None:
    path = tmp_path / "vault.sqlite"
    vault = _vault(path)
    for i in range(3):
        vault.stage(f"tx{i}", "org-a/c", f"k{i}", {"n": i}, durable=False)
    assert _rows_on_disk(path) == []
    assert vault.unsynced == 3
    assert vault.sync() is True
    assert vault.sync() is False
    assert _rows_on_disk(path) == [("tx0", "pending"), ("tx1", "pending"), ("tx2", "pending")]
    vault.settle_many([("tx0", True), ("tx1", False)])
    assert _rows_on_disk(path) == [("tx0", "committed"), ("tx2", "pending")]
    assert vault.read("org-a/c", "k0") == {"n": 0}
    assert vault.read("org-a/c", "k2") is None  # pending is not readable
    vault.close()


def test_a_pending_value_reads_once_its_transaction_committed_valid(tmp_path: Path) -> None:
    """Between a block's commit and the settling of its vaults, the ledger already shows
    the transaction VALID: its value is readable; a newer value of a transaction not
    (or not validly) committed is not, and the older committed one stands."""
    vault = _vault(tmp_path / "vault.sqlite")
    vault.stage("old", "org-a/c", "k", {"n": 1})
    vault.settle_many([("old", True)])
    vault.stage("new", "org-a/c", "k", {"n": 2})
    valid: set[str] = set()
    vault.committed_valid = valid.__contains__
    assert vault.read("org-a/c", "k") == {"n": 1}
    valid.add("new")
    assert vault.read("org-a/c", "k") == {"n": 2}
    vault.close()


def test_concurrent_syncs_write_every_staged_value_once(tmp_path: Path) -> None:
    path = tmp_path / "vault.sqlite"
    vault = _vault(path)

    def work(worker: int) -> None:
        for i in range(20):
            vault.stage(f"w{worker}-{i}", "org-a/c", f"k{worker}-{i}", i, durable=False)
            vault.sync()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert vault.unsynced == 0
    assert sorted(tx for tx, _ in _rows_on_disk(path)) == sorted(
        f"w{w}-{i}" for w in range(4) for i in range(20)
    )
    vault.close()


def test_closing_a_vault_writes_what_it_staged(tmp_path: Path) -> None:
    path = tmp_path / "vault.sqlite"
    vault = _vault(path)
    vault.stage("tx", "org-a/c", "k", 1, durable=False)
    vault.close()
    assert _rows_on_disk(path) == [("tx", "pending")]
