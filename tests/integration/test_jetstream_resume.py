"""A peer on JetStream killed -9 under load resumes from the stream position recorded
with its last block and ends with the same chain as a peer that never stopped."""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from healthledger.cli.bench import BENCH_CLIENT, bench_node
from healthledger.cli.bench_contract import BenchContract
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.ledger.sqlite_store import SqliteStore
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.consortium_peer import jetstream_ordering
from healthledger.node.embedded import LEDGER_FILE, EmbeddedNode
from healthledger.node.peer import Receipt
from healthledger.ordering.nats_cluster import NatsCluster
from tests.support.nats_cluster import fresh_cluster, nats_cluster

pytestmark = pytest.mark.slow

__all__ = ["nats_cluster"]

ROOT = Path(__file__).resolve().parents[2]
STREAM = "RESUME"
TX_COUNT = 600


def spawn_peer(data: Path, cluster: NatsCluster) -> subprocess.Popen[str]:
    """The peer process of ``data``, once it reports ready."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.jetstream_peer", str(data), STREAM, *cluster.urls],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        assert selector.select(30), "the peer process did not start within 30 s"
    assert proc.stdout.readline().strip() == "ready"
    return proc


def height_of(data: Path) -> int:
    """Committed blocks in ``data``'s ledger, read while another process writes it."""
    db = sqlite3.connect(f"file:{data / LEDGER_FILE}?mode=ro", uri=True, timeout=5)
    try:
        row = db.execute("SELECT COALESCE(MAX(height) + 1, 0) FROM blocks").fetchone()
    finally:
        db.close()
    return int(row[0])


def test_a_peer_killed_under_load_resumes_with_the_same_chain(
    tmp_path: Path, nats_cluster: NatsCluster
) -> None:
    fresh_cluster(nats_cluster)
    bench_node(tmp_path / "a").stop()
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    a = EmbeddedNode(
        tmp_path / "a",
        contracts=(*SYSTEM_CONTRACTS, BenchContract),
        resume_orderer=jetstream_ordering(
            nats_cluster.urls,
            stream=STREAM,
            subject_prefix=f"hl.{STREAM.lower()}",
            max_block_tx=16,
            batch_timeout_s=0.02,
        ),
    ).start()
    b = spawn_peer(tmp_path / "b", nats_cluster)
    receipts: list[Receipt] = []

    def put(i: int) -> Receipt:
        signed = a.propose(BENCH_CLIENT, "bench", "put", {"key": f"k{i}", "value": i})
        return a.peer.wait(a.peer.submit(a.peer.endorse(signed), precheck=False), "put", 30)

    def load() -> None:
        with ThreadPoolExecutor(8) as pool:
            receipts.extend(pool.map(put, range(TX_COUNT)))

    loader = threading.Thread(target=load)
    try:
        loader.start()
        deadline = time.monotonic() + 30
        while height_of(tmp_path / "b") < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert loader.is_alive(), "the load ended before the peer could be killed"
        os.kill(b.pid, signal.SIGKILL)
        b.wait(10)
        killed_at = height_of(tmp_path / "b")
        b = spawn_peer(tmp_path / "b", nats_cluster)
        loader.join(60)
        assert len(receipts) == TX_COUNT
        assert all(r.code is ValidationCode.VALID for r in receipts)
        head = a.peer.store.height()
        deadline = time.monotonic() + 30
        while height_of(tmp_path / "b") < head and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        b.send_signal(signal.SIGTERM)
        b.wait(30)
        a.stop()
    assert 0 < killed_at < head
    store_a = SqliteStore(tmp_path / "a" / LEDGER_FILE)
    store_b = SqliteStore(tmp_path / "b" / LEDGER_FILE)
    try:
        assert store_b.height() == store_a.height() == head
        for height in range(head):
            assert store_b.header(height).hash == store_a.header(height).hash
        assert store_b.ordering_position() == store_a.ordering_position() > 0
        tx_ids = [
            store_b.tx_at_log_index(i).tx_id
            for i in range(1, store_b.head().log_size)  # type: ignore[union-attr]
        ]
        assert len(tx_ids) == len(set(tx_ids)) == TX_COUNT
        assert set(tx_ids) == {r.tx_id for r in receipts}
    finally:
        store_a.close()
        store_b.close()
