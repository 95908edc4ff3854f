"""The ledger store's contract, on both stores: the SQLite file and a PostgreSQL database
(a real server started by the test process, tests.support.postgres).

A node commits, reads, proves and restarts the same on each; a commit that fails half-way
changes nothing; a damaged head or block is refused at start; and the PostgreSQL store
refuses what would break its promise (a server that acknowledges before the disk has the
block) in one line that never shows a password.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.crypto.keys import decode_b64
from healthledger.ledger.block import FORMAT_VERSION
from healthledger.ledger.errors import CorruptStore, NotFound, StorageError
from healthledger.ledger.merkle import verify_inclusion
from healthledger.ledger.state import StateUpdate
from healthledger.ledger.store import BlockCommit, is_postgres_location, open_store
from healthledger.ledger.validation import BlockValidation
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.errors import NodeError
from healthledger.node.parts import open_checked_store
from tests.support.cli import healthledger
from tests.support.contracts import Notebook
from tests.support.postgres import (
    backend_node,
    found_on_postgres,
    postgres_server,
    store_location,
)

__all__ = ["backend_node", "store_location"]

DOCTOR = "gz-first-hospital/dr-li"
CONTRACTS = (*SYSTEM_CONTRACTS, Notebook)
KEYS = ["b", "B", "a", "a-1", "a.1", "a_1", "a~", "Z", "é", "中", "ward 3", "z~"]
"""Keys whose order differs between byte order and a locale's collation."""


def _location(node: EmbeddedNode) -> str:
    return str(node.parts.store_location)


def test_commits_reads_proofs_and_restarts_alike(backend_node: EmbeddedNode) -> None:
    node = backend_node
    receipts = {}
    for i, key in enumerate(KEYS):
        receipts[key], _ = node.invoke(DOCTOR, "notebook", "put", {"key": key, "value": i})
    node.invoke(DOCTOR, "notebook", "put", {"key": "b", "value": 100})
    node.invoke(DOCTOR, "notebook", "remove", {"key": "a-1"})
    store = node.peer.store

    # Ranges are in the byte order of the keys (UTF-8 order is code point order).
    live = sorted(k for k in KEYS if k != "a-1")
    assert [k for k, _ in store.range_state("notebook", "", "", 100)] == live
    assert [k for k, _ in store.range_state("notebook", "a", "b", 100)] == [
        k for k in live if "a" <= k < "b"
    ]
    assert [k for k, _ in store.range_state("notebook", "B", "", 3)] == live[live.index("B") :][:3]

    got = store.get_states([("notebook", k) for k in [*KEYS, "absent"]])
    assert set(got) == {("notebook", k) for k in live}
    assert got[("notebook", "b")].value["value"] == 100
    assert got[("notebook", "中")] == store.get_state("notebook", "中")

    history = store.key_history("notebook", "a-1", 10)
    assert [h.deleted for h in history] == [True, False]
    assert history[1].value["value"] == KEYS.index("a-1")
    assert history[0].timestamp >= history[1].timestamp > 0
    assert [h.value["value"] for h in store.key_history("notebook", "b", 10)] == [100, 0]

    first = receipts["b"]
    location = store.tx_location(first.tx_id)
    assert location is not None and location.height == first.height
    assert store.tx_at_log_index(location.log_index) == location
    assert store.committed_among([first.tx_id, "0" * 64, first.tx_id]) == {first.tx_id}
    with pytest.raises(NotFound):
        store.tx_at_log_index(10**9)
    with pytest.raises(NotFound):
        store.block_bytes(store.height())
    proof = node.peer.inclusion_proof(first.tx_id)
    verify_inclusion(
        leaf_index=proof["leafIdx"],
        tree_size=proof["treeSize"],
        leaf_hash=decode_b64(proof["leafHash"]),
        proof=[decode_b64(p) for p in proof["proof"]],
        root=decode_b64(proof["root"]),
    )

    # A restart reads back the same head, state and blocks.
    height, head = store.height(), store.head()
    states = list(store.range_state("notebook", "", "", 100))
    blocks = [store.block_bytes(h) for h in range(height)]
    node.stop()
    again = EmbeddedNode(node.data_dir, contracts=CONTRACTS)
    try:
        reopened = again.peer.store
        assert (reopened.height(), reopened.head()) == (height, head)
        assert list(reopened.range_state("notebook", "", "", 100)) == states
        assert [reopened.block_bytes(h) for h in range(height)] == blocks
        assert type(reopened) is type(store)
    finally:
        again.stop()


def test_a_commit_that_fails_half_way_changes_nothing(backend_node: EmbeddedNode) -> None:
    node = backend_node
    node.parts.halt()
    chain, store = node.peer.chain, node.peer.store
    height, head = store.height(), store.head()
    head_tx = store.tx_at_log_index(head.log_size - 1) if head else None
    update = StateUpdate("notebook", "half", {"value": 1}, False, (height, 0), "f" * 64)
    block, good = chain.build_block([], BlockValidation((), (update,)), timestamp=head.timestamp)
    # The same history row twice: the block row and the state write go in first, then
    # the second history row breaks the primary key, inside the one transaction.
    broken = BlockCommit(
        block=good.block,
        block_bytes=good.block_bytes,
        updates=(update, update),
        log_append=good.log_append,
        stream_seq=7,
    )
    with pytest.raises(StorageError):
        store.commit(broken)
    assert (store.height(), store.head()) == (height, head)
    with pytest.raises(NotFound):
        store.block_bytes(height)
    assert store.get_state("notebook", "half") is None
    assert store.key_history("notebook", "half", 10) == []
    assert store.ordering_position() == 0
    assert head_tx is None or store.tx_at_log_index(head.log_size - 1) == head_tx
    # The good commit still goes through afterwards; a block at a taken height does not.
    store.commit(good)
    assert store.height() == height + 1
    assert store.get_state("notebook", "half") is not None
    with pytest.raises(StorageError, match="out of order"):
        store.commit(good)
    assert store.block_bytes(height) == block.canonical


def _tamper_last_block(location: str) -> None:
    sql = "UPDATE blocks SET body = body || '{}' WHERE height = (SELECT max(height) FROM blocks)"
    if is_postgres_location(location):
        postgres_server().execute(location, sql.replace("'{}'", "'\\x7b7d'::bytea"))
    else:
        db = sqlite3.connect(location)
        db.execute(sql.replace("body || '{}'", "CAST(body || '{}' AS BLOB)"))
        db.commit()
        db.close()


def test_a_changed_block_is_refused_at_start(backend_node: EmbeddedNode) -> None:
    backend_node.invoke(DOCTOR, "notebook", "put", {"key": "k", "value": 1})
    location = _location(backend_node)
    backend_node.stop()
    _tamper_last_block(location)
    with pytest.raises(CorruptStore, match="is damaged") as raised:
        open_checked_store(location)
    assert "restore it" in str(raised.value)


# --- what only the PostgreSQL store has to refuse ---------------------------------


def _with_options(url: str, options: str) -> str:
    return f"{url}&options={options}"


def test_postgres_refuses_a_server_that_acknowledges_before_the_disk() -> None:
    url = postgres_server().create_database()
    for setting in ("synchronous_commit%3Doff", "synchronous_commit%3Dlocal"):
        with pytest.raises(StorageError, match="synchronous_commit") as raised:
            open_store(_with_options(url, f"-c%20{setting}"))
        assert "\n" not in str(raised.value)
    open_store(url).close()


def test_postgres_unreachable_is_one_line_without_the_password() -> None:
    with pytest.raises(StorageError) as raised:
        open_store("postgresql://hl:s3cret-pw@127.0.0.1:1/ledger?connect_timeout=2")
    message = str(raised.value)
    assert "s3cret-pw" not in message and "\n" not in message
    assert "postgresql://hl@127.0.0.1:1/ledger" in message
    with pytest.raises(StorageError, match="not a PostgreSQL connection URL"):
        open_store("postgresql://hl@127.0.0.1:1/ledger?nosuchoption=1")


def test_postgres_store_of_a_newer_format_is_refused() -> None:
    server = postgres_server()
    url = server.create_database()
    open_store(url).close()
    server.execute(url, f"UPDATE meta SET value='{FORMAT_VERSION + 1}' WHERE key='format_version'")
    with pytest.raises(StorageError, match="newer"):
        open_store(url)


def test_a_folder_keeps_the_store_it_was_founded_with(tmp_path: Path) -> None:
    from healthledger.node.parts import DataDirError, store_location

    assert store_location(tmp_path, {}) == tmp_path / "ledger.sqlite"
    url = "postgresql://hl:pw@db.example/ledger"
    assert store_location(tmp_path, {"store": url}) == url
    assert store_location(tmp_path, {"store": url}, url) == url
    assert store_location(tmp_path, {}, url) == url
    with pytest.raises(DataDirError, match="not a postgresql:// URL"):
        store_location(tmp_path, {"store": "/var/lib/ledger.sqlite"})
    with pytest.raises(
        DataDirError, match=r"keeps its ledger in postgresql://hl@db\.example/ledger, not"
    ):
        store_location(tmp_path, {"store": url}, "postgresql://hl@db.example/other")
    (tmp_path / "ledger.sqlite").touch()
    with pytest.raises(DataDirError, match=r"keeps its ledger in ledger\.sqlite"):
        store_location(tmp_path, {}, url)


def test_node_command_serves_the_store_its_folder_names(backend_node: EmbeddedNode) -> None:
    """``healthledger node --store`` refuses, in one line, a store that is not the one the
    folder was founded with (its ledger.sqlite, or the database node.json names); and
    ``healthledger verify`` of the folder audits its ledger wherever it is."""
    data = backend_node.data_dir
    backend_node.stop()
    other = postgres_server().create_database()
    done = healthledger("node", "--data", str(data), "--store", other, "--port", "1")
    assert done.returncode == 2, done.stderr
    assert "keeps its ledger in" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
    done = healthledger("verify", str(data))
    assert done.returncode == 0, done.stderr
    where = "postgresql://" if is_postgres_location(_location(backend_node)) else str(data)
    assert done.stdout.startswith(f"ok {where}")


def test_postgres_server_crash_loses_no_acknowledged_block(tmp_path: Path) -> None:
    """The PostgreSQL server crashes (every process killed, nothing flushed) while a
    client writes: a write either waits for the server to come back (a commit whose
    answer was lost asks the server whether it landed) or fails with a one-line named
    error, every acknowledged write is there once the server is back, and the node goes
    on committing without a restart of its own."""
    server = postgres_server()
    node = found_on_postgres(tmp_path / "data", contracts=CONTRACTS, batch_timeout_s=0.005)
    node.start()
    acknowledged: dict[str, int] = {}
    failures: list[BaseException] = []
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            try:
                receipt, _ = node.invoke(DOCTOR, "notebook", "put", {"key": f"w{i}", "value": i})
                acknowledged[receipt.tx_id] = receipt.height
            except (StorageError, NodeError) as exc:
                failures.append(exc)
                time.sleep(0.01)
            i += 1

    writer = threading.Thread(target=write)
    try:
        writer.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.crash()
        time.sleep(0.3)
        server.start()
        # Writes commit again on their own once the server is back.
        seen = len(acknowledged)
        while len(acknowledged) < seen + 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        writer.join(30)
        assert all("\n" not in str(f) for f in failures)
        assert len(acknowledged) >= seen + 3
    finally:
        stop.set()
        writer.join(30)
        node.stop()
    again = EmbeddedNode(tmp_path / "data", contracts=CONTRACTS)
    try:
        for tx_id, height in acknowledged.items():
            location = again.peer.store.tx_location(tx_id)
            assert location is not None and location.height == height
    finally:
        again.stop()


def test_a_block_leaves_the_same_state_on_either_store(backend_node: EmbeddedNode) -> None:
    """Several writes of one key in a block (blind writes may follow a delete): each
    store leaves the key's last write, put or delete, as the block's later transactions
    saw it, so peers on different stores keep one world state."""
    node = backend_node
    node.parts.halt()
    chain, store = node.peer.chain, node.peer.store
    height = store.height()
    tx = "e" * 64

    def update(key: str, value: object, index: int) -> StateUpdate:
        return StateUpdate("notebook", key, value, value is None, (height, index), tx)

    updates = (
        update("twice", 1, 0),
        update("twice", 2, 1),
        update("put-delete-put", 1, 2),
        update("put-delete-put", None, 3),
        update("put-delete-put", 3, 4),
        update("put-delete", 1, 5),
        update("put-delete", None, 6),
    )
    head = store.head()
    assert head is not None
    _, commit = chain.build_block([], BlockValidation((), updates), timestamp=head.timestamp)
    store.commit(commit)
    state = {k: v.value for k, v in store.range_state("notebook", "", "", 100)}
    assert state == {"twice": 2, "put-delete-put": 3}
    assert store.get_state("notebook", "put-delete-put").version == (height, 4)
    assert [h.value for h in store.key_history("notebook", "put-delete-put", 10)] == [3, None, 1]
