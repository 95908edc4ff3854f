"""A node's start reads every page of its store only when it may have changed since
its last clean stop (ledger.clean_stop): a clean stop is trusted, an unclean stop or
a change to the file while the node was stopped brings the full check back, and the
full check still refuses a damaged page that the constant-cost checks do not read."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthledger.demo.organisations import DEMO_ORGS
from healthledger.ledger.clean_stop import record_path
from healthledger.ledger.errors import CorruptStore
from healthledger.ledger.sqlite_store import SqliteStore
from healthledger.node.embedded import CHECKPOINT_DIR, LEDGER_FILE, EmbeddedNode
from tests.conftest import CONTRACTS

DOCTOR = "gz-first-hospital/dr-li"


def put_some(node: EmbeddedNode, count: int, first: int = 0) -> None:
    """``count`` notebook puts, one block each."""
    for i in range(first, first + count):
        node.invoke(DOCTOR, "notebook", "put", {"key": f"k{i}-{'x' * 200}", "value": i})


@pytest.fixture
def stopped(tmp_path: Path) -> Iterator[Path]:
    """A data folder whose node stopped cleanly after a few blocks."""
    data = tmp_path / "data"
    with EmbeddedNode.create(
        data, contracts=CONTRACTS, batch_timeout_s=0.01, plans=DEMO_ORGS
    ) as node:
        put_some(node, 6)
    yield data


def pages_checked(data: Path) -> bool:
    """Open and stop a node on ``data``: whether its start read every page."""
    node = EmbeddedNode(data, contracts=CONTRACTS)
    try:
        store = node.peer.store
        assert isinstance(store, SqliteStore) and store.pages_checked is not None
        return store.pages_checked
    finally:
        node.stop()


def damage_a_history_page(db_path: Path) -> None:
    """Flip the b-tree header of the history table's root page: a page that neither
    the re-derived recent blocks nor the head read."""
    db = sqlite3.connect(db_path)
    try:
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name='history'").fetchone()
        (page_size,) = db.execute("PRAGMA page_size").fetchone()
    finally:
        db.close()
    with db_path.open("r+b") as handle:
        handle.seek((int(root) - 1) * int(page_size))
        data = handle.read(12)
        handle.seek((int(root) - 1) * int(page_size))
        handle.write(bytes(b ^ 0xFF for b in data))


def test_a_clean_stop_is_recorded_and_the_next_start_trusts_it(stopped: Path) -> None:
    record = record_path(stopped / LEDGER_FILE)
    assert record.exists()
    assert json.loads(record.read_text())["head"] is not None
    assert pages_checked(stopped) is False
    # The start took the record away; the stop wrote a new one.
    assert record.exists()
    assert pages_checked(stopped) is False


def test_start_after_an_unclean_stop_reads_every_page_and_refuses_damage(
    stopped: Path, tmp_path: Path
) -> None:
    with EmbeddedNode(stopped, contracts=CONTRACTS, batch_timeout_s=0.01) as node:
        put_some(node, 3, first=10)
        # A crash now: the files as they are while the node runs.
        crashed = shutil.copytree(stopped, tmp_path / "crashed")
        assert not record_path(crashed / LEDGER_FILE).exists()
    assert pages_checked(crashed) is True
    # Once that start stopped cleanly, the next one trusts the file again.
    assert pages_checked(crashed) is False


def test_a_damaged_page_after_an_unclean_stop_is_refused(stopped: Path) -> None:
    record_path(stopped / LEDGER_FILE).unlink()  # as a crash leaves it
    damage_a_history_page(stopped / LEDGER_FILE)
    with pytest.raises(CorruptStore, match=r"quick_check|malformed"):
        EmbeddedNode(stopped, contracts=CONTRACTS)


def test_a_file_written_while_the_node_was_stopped_is_checked_in_full(stopped: Path) -> None:
    """Any write after the clean stop moves the file's times: the record no longer
    matches, and the full check finds the damage the other checks would not read."""
    damage_a_history_page(stopped / LEDGER_FILE)
    with pytest.raises(CorruptStore, match=r"quick_check|malformed"):
        EmbeddedNode(stopped, contracts=CONTRACTS)


def test_a_file_rewritten_unchanged_or_replaced_is_checked_in_full(stopped: Path) -> None:
    db_path = stopped / LEDGER_FILE
    db_path.write_bytes(db_path.read_bytes())
    assert pages_checked(stopped) is True
    copy = db_path.with_name("copy.sqlite")
    shutil.copy2(db_path, copy)
    copy.replace(db_path)
    assert pages_checked(stopped) is True


def test_a_damaged_record_means_a_full_check(stopped: Path) -> None:
    record_path(stopped / LEDGER_FILE).write_text("{not json")
    assert pages_checked(stopped) is True
    record = record_path(stopped / LEDGER_FILE)
    found = json.loads(record.read_text())
    found["head"] = "00" * 32
    record.write_text(json.dumps(found))
    # The file's stamp matches but the head is another: every page is read.
    assert pages_checked(stopped) is True


# --- the block of the latest signed checkpoint -----------------------------------


def checkpointed(folder: Path) -> Path:
    """A stopped node's data folder that signed checkpoints every 2 blocks."""
    with EmbeddedNode.create(
        folder, contracts=CONTRACTS, batch_timeout_s=0.01, plans=DEMO_ORGS, checkpoint_every=2
    ) as node:
        put_some(node, 4)
    assert (folder / CHECKPOINT_DIR / "latest.note").exists()
    return folder


def test_a_node_starts_on_the_chain_its_latest_checkpoint_signed(tmp_path: Path) -> None:
    data = checkpointed(tmp_path / "data")
    with EmbeddedNode(data, contracts=CONTRACTS) as node:
        assert node.peer.store.height() == 5


def test_a_history_other_than_the_latest_checkpoint_signed_is_refused(tmp_path: Path) -> None:
    """Another chain's note at the same height stands for a history rewritten below the
    blocks the start re-derives: the block there is not the one signed."""
    ours, theirs = checkpointed(tmp_path / "ours"), checkpointed(tmp_path / "theirs")
    note = (theirs / CHECKPOINT_DIR / "latest.note").read_text()
    assert note != (ours / CHECKPOINT_DIR / "latest.note").read_text()
    (ours / CHECKPOINT_DIR / "latest.note").write_text(note)
    with pytest.raises(CorruptStore, match="is not the block of the checkpoint") as raised:
        EmbeddedNode(ours, contracts=CONTRACTS)
    assert "restore it before serving" in str(raised.value)


def test_a_checkpoint_above_the_head_or_unreadable_is_logged_not_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A store restored from an older copy is below its node's latest checkpoint: the
    checkpoint exchange and catch-up deal with that, the start does not refuse it."""
    data = checkpointed(tmp_path / "data")
    latest = data / CHECKPOINT_DIR / "latest.note"
    latest.write_text(latest.read_text().replace("height 4\n", "height 40\n"))
    with caplog.at_level(logging.WARNING), EmbeddedNode(data, contracts=CONTRACTS):
        pass
    assert "above the store's head" in caplog.text
    caplog.clear()
    latest.write_text("not a note")
    with caplog.at_level(logging.WARNING), EmbeddedNode(data, contracts=CONTRACTS):
        pass
    assert "does not read as a checkpoint" in caplog.text
