"""Storage faults of a peer's disk: a full disk during commit, and a store damaged on
disk (a flipped page, a truncated write-ahead log, a truncated database file).

A full disk: the peer's data folder lives on a real, small filesystem the test
mounts (a size-limited tmpfs, and a loop-mounted ext4 image), filled by a file that
takes every free byte. A submitter gets 507 problem details (``storage-full``), no
refused transaction is on disk, every acknowledged one is, the offline audit
passes, and the same process commits again once the filler is removed.

A damaged store: the node's start-up checks (write-ahead log against wal-index,
``PRAGMA quick_check``, the most recent blocks re-derived) refuse it with one line
that says how to restore it; the CLI prints that line and exits non-zero.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from healthledger.api.app import create_api
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.ledger.audit import audit_store
from healthledger.ledger.errors import CorruptStore
from healthledger.ledger.sqlite_store import SqliteStore
from healthledger.ledger.transaction import ValidationCode
from healthledger.ledger.wal import read_store_wal
from healthledger.node.embedded import LEDGER_FILE, EmbeddedNode
from healthledger.node.endorsers import new_validator
from tests.conftest import CONTRACTS
from tests.support.cli import healthledger
from tests.support.members import member_reads
from tests.support.small_disk import KINDS, Filler, small_disk

DOCTOR = "gz-first-hospital/dr-li"
PAD = "x" * 200
"""Long keys fill the disk in fewer transactions."""
MAX_REFUSALS = 5
MAX_TRIES = 200


class Submitter:
    """Submits notebook puts through the API and records every answer."""

    def __init__(self, node: EmbeddedNode, client: TestClient) -> None:
        self.node = node
        self.client = client
        self.acknowledged: list[str] = []
        self.refused: list[tuple[str, dict[str, Any]]] = []
        self._next = 0

    def put(self) -> int:
        """One signed put through ``/api/v1/invoke``; the HTTP status."""
        i = self._next
        self._next += 1
        proposal = self.node.keystore.propose(
            DOCTOR,
            "notebook",
            "put",
            {"key": f"k{i:05d}-{PAD}", "value": i},
            timestamp=self.node.clock(),
        )
        response = self.client.post("/api/v1/invoke", json=proposal.to_json())
        if response.status_code == 200:
            assert response.json()["receipt"]["tx_id"] == proposal.tx_id
            self.acknowledged.append(proposal.tx_id)
        else:
            self.refused.append((proposal.tx_id, response.json()))
        return response.status_code


@pytest.mark.parametrize("kind", KINDS)
def test_full_disk_refuses_with_507_writes_nothing_and_commits_once_space_returns(
    tmp_path: Path, kind: str
) -> None:
    with small_disk(tmp_path, kind, size_mib=8) as disk:
        data = disk / "data"
        filler = Filler(disk / "filler")
        node = EmbeddedNode.create(
            data, contracts=CONTRACTS, batch_timeout_s=0.01, plans=DEMO_ORGS
        ).start()
        try:
            with TestClient(create_api(node), raise_server_exceptions=False) as client:
                client.auth = member_reads(node)
                submitter = Submitter(node, client)
                for _ in range(5):
                    assert submitter.put() == 200
                filler.fill()
                for _ in range(MAX_TRIES):
                    # A commit may still fit in space SQLite already holds (a reused
                    # log); it must then be durable like any other.
                    submitter.put()
                    if len(submitter.refused) >= MAX_REFUSALS:
                        break
                assert len(submitter.refused) >= MAX_REFUSALS, "the disk never ran out"
                for _, body in submitter.refused:
                    assert body["status"] == 507, body
                    assert body["type"] == "/api/v1/problems/storage-full", body
                    assert "disk is full" in body["detail"], body
                    assert "Traceback" not in str(body)
                # Reads keep working on a full disk.
                height = client.get("/api/v1/status").json()["height"]
                assert height == node.peer.store.height()
                filler.release()
                for _ in range(5):
                    assert submitter.put() == 200, submitter.refused[-1]
        finally:
            node.stop()
            filler.release()

        report = audit_store(data / LEDGER_FILE, validator=new_validator())
        assert report.transactions == len(submitter.acknowledged) + 1  # and the genesis
        store = SqliteStore(data / LEDGER_FILE, startup_check=True)
        try:
            for tx_id in submitter.acknowledged:
                location = store.tx_location(tx_id)
                assert location is not None and location.code is ValidationCode.VALID
            for tx_id, _ in submitter.refused:
                assert store.tx_location(tx_id) is None, "a refused transaction is on disk"
        finally:
            store.close()
        # A restarted node passes its start-up checks and commits.
        with EmbeddedNode(data, contracts=CONTRACTS, batch_timeout_s=0.01) as again:
            receipt, _ = again.invoke(DOCTOR, "notebook", "put", {"key": "after", "value": 1})
            assert receipt.code is ValidationCode.VALID


# --- a damaged store ---------------------------------------------------------------


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Path]:
    """A stopped node's data folder with a few blocks, its log checkpointed away."""
    data = tmp_path / "data"
    with EmbeddedNode.create(
        data, contracts=CONTRACTS, batch_timeout_s=0.01, plans=DEMO_ORGS
    ) as node:
        for i in range(6):
            node.invoke(DOCTOR, "notebook", "put", {"key": f"k{i}-{PAD}", "value": i})
    yield data


def crash_image(node: EmbeddedNode, into: Path) -> Path:
    """The data folder as a crash now would leave it: the database, its write-ahead log
    and wal-index copied while the node holds them open (between commits), so the
    committed blocks are in the log, not yet in the database file."""
    shutil.copytree(node.data_dir, into)
    return into


def committed_image(
    tmp_path: Path, blocks: int, *, in_progress: bool = False
) -> tuple[Path, int, list[str]]:
    """A crash image of a node that committed ``blocks`` blocks after genesis (and,
    with ``in_progress``, was writing a transaction whose first pages SQLite had
    already spilled to the log); its folder, the head height and the acknowledged tx
    ids."""
    data = tmp_path / "live"
    acknowledged = []
    with EmbeddedNode.create(
        data, contracts=CONTRACTS, batch_timeout_s=0.01, plans=DEMO_ORGS
    ) as node:
        # No automatic checkpoint: every block stays in the log, as between two.
        node.peer.store.raw().execute("PRAGMA wal_autocheckpoint=0")
        for i in range(blocks):
            receipt, _ = node.invoke(DOCTOR, "notebook", "put", {"key": f"k{i}", "value": i})
            acknowledged.append(receipt.tx_id)
        head = node.peer.store.height() - 1
        if not in_progress:
            return crash_image(node, tmp_path / "crashed"), head, acknowledged
        writer = sqlite3.connect(data / LEDGER_FILE, isolation_level=None)
        try:
            # A tiny page cache makes SQLite write pages to the log before the commit.
            writer.execute("PRAGMA cache_size=10")
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("CREATE TABLE scratch (x BLOB)")
            writer.executemany("INSERT INTO scratch VALUES (?)", [(os.urandom(3000),)] * 100)
            image = crash_image(node, tmp_path / "crashed")
            writer.execute("ROLLBACK")
        finally:
            writer.close()
    return image, head, acknowledged


def assert_refused(data: Path, *why: str) -> str:
    """Starting a node on ``data`` is refused with CorruptStore naming ``why`` and the
    way to restore; the message."""
    with pytest.raises(CorruptStore) as raised:
        EmbeddedNode(data, contracts=CONTRACTS)
    message = str(raised.value)
    for part in why:
        assert part in message, message
    assert "restore it before serving" in message and "snapshot" in message, message
    assert "\n" not in message
    return message


def flip(path: Path, offset: int, count: int = 8) -> None:
    """Invert ``count`` bytes of ``path`` at ``offset``."""
    with path.open("r+b") as handle:
        handle.seek(offset)
        data = handle.read(count)
        handle.seek(offset)
        handle.write(bytes(b ^ 0xFF for b in data))


def page_of_table(db_path: Path, table: str) -> tuple[int, int]:
    """(root page number, page size) of ``table``."""
    db = sqlite3.connect(db_path)
    try:
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,)).fetchone()
        (page_size,) = db.execute("PRAGMA page_size").fetchone()
    finally:
        db.close()
    return int(root), int(page_size)


def test_flipped_btree_page_is_refused_at_start_by_quick_check(ledger: Path) -> None:
    db_path = ledger / LEDGER_FILE
    root, page_size = page_of_table(db_path, "txs")
    # The page header and cell pointers of the txs table's root page.
    flip(db_path, (root - 1) * page_size, 12)
    assert_refused(ledger, "is damaged")


def test_flipped_bytes_in_the_head_block_are_refused_at_start_by_the_chain_self_check(
    ledger: Path,
) -> None:
    db_path = ledger / LEDGER_FILE
    store = SqliteStore(db_path)
    head = store.head()
    store.close()
    assert head is not None
    content = db_path.read_bytes()
    # One hex digit inside a record's payload: SQLite keeps no checksum there, so
    # quick_check passes, and the text still reads.
    offset = content.index(head.tx_root.encode()) + 10
    with db_path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(b"1" if content[offset : offset + 1] == b"0" else b"0")
    check = sqlite3.connect(db_path)
    assert check.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    check.close()
    assert_refused(ledger, f"stored block {head.height} fails its self-check")


def test_truncated_database_file_is_refused_at_start(ledger: Path) -> None:
    db_path = ledger / LEDGER_FILE
    os.truncate(db_path, db_path.stat().st_size // 2)
    assert_refused(ledger, "is damaged")


def test_truncated_wal_inside_committed_frames_is_refused_at_start(tmp_path: Path) -> None:
    image, _, _ = committed_image(tmp_path, blocks=6)
    wal = image / f"{LEDGER_FILE}-wal"
    reading = read_store_wal(image / LEDGER_FILE)
    assert reading.index_frames == reading.log_frames > 0
    # Cut inside the last committed frame: SQLite alone would open the older ledger.
    os.truncate(wal, wal.stat().st_size - 100)
    assert_refused(image, "write-ahead log lost", "committed frame(s)")


def test_wal_truncated_after_the_last_commit_frame_loses_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    """SQLite discards an incomplete trailing transaction by design: a crash mid-commit
    leaves one, never acknowledged. Cut inside it, the log still holds every block."""
    image, head, acknowledged = committed_image(tmp_path, blocks=6, in_progress=True)
    wal = image / f"{LEDGER_FILE}-wal"
    reading = read_store_wal(image / LEDGER_FILE)
    assert reading.index_frames == reading.log_frames > 0
    page_size = 4096
    committed_end = 32 + reading.log_frames * (24 + page_size)
    assert wal.stat().st_size > committed_end + 3 * (24 + page_size), "nothing spilled"
    os.truncate(wal, committed_end + 2 * (24 + page_size) + 1000)
    assert read_store_wal(image / LEDGER_FILE).lost == 0
    with EmbeddedNode(image, contracts=CONTRACTS) as node:
        store = node.peer.store
        assert store.height() - 1 == head
        assert all(store.tx_location(tx_id) is not None for tx_id in acknowledged)
        tables = store.raw().execute("SELECT name FROM sqlite_master WHERE name='scratch'")
        assert tables.fetchall() == [], "the uncommitted transaction reappeared"
    audit_store(image / LEDGER_FILE, validator=new_validator())


def test_a_crash_image_opens_cleanly_with_every_acknowledged_block(tmp_path: Path) -> None:
    image, head, acknowledged = committed_image(tmp_path, blocks=4)
    with EmbeddedNode(image, contracts=CONTRACTS) as node:
        assert node.peer.store.height() - 1 == head
        assert all(node.peer.store.tx_location(t) is not None for t in acknowledged)


def test_node_command_refuses_a_damaged_store_in_one_line(ledger: Path) -> None:
    db_path = ledger / LEDGER_FILE
    os.truncate(db_path, db_path.stat().st_size // 2)
    result = healthledger("node", "--data", str(ledger), "--port", "0", timeout=120)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "restore it before serving" in lines[0]
    assert "Traceback" not in result.stderr
