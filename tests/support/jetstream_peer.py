"""Peer processes and load for the crash and fault tests.

``python -m tests.support.jetstream_peer DATA STREAM URL [URL ...]`` opens an embedded
data folder on the bench contract; ``python -m tests.support.jetstream_peer
--consortium DATA STREAM URL [URL ...]`` opens a consortium peer folder (installed
contracts, checkpoint exchange). Either resumes the stream after the position recorded
with its last block, prints ``ready`` and commits until SIGTERM.
"""

from __future__ import annotations

import selectors
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from healthledger.apps.registry import installed_contracts
from healthledger.cli.bench_contract import BenchContract
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.consortium_peer import (
    ConsortiumNode,
    jetstream_ordering,
    open_consortium_peer,
)
from healthledger.node.embedded import LEDGER_FILE, EmbeddedNode
from healthledger.node.errors import NodeError
from tests.support.gs1 import gln

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT_EVERY = 4
MAX_BLOCK_TX = 16


def open_peer(data: Path, stream: str, servers: Sequence[str]) -> ConsortiumNode:
    """A consortium peer on ``stream`` (its own subjects and checkpoint stream), small
    blocks and a checkpoint every few blocks, not started."""
    return open_consortium_peer(
        data,
        contracts=installed_contracts(),
        servers=servers,
        stream=stream,
        subject_prefix=f"hl.{stream.lower()}",
        max_block_tx=MAX_BLOCK_TX,
        batch_timeout_s=0.02,
        checkpoint_every=CHECKPOINT_EVERY,
        stuck_after_s=5.0,
    )


def spawn_peer(data: Path, stream: str, servers: Sequence[str]) -> subprocess.Popen[str]:
    """The consortium peer process of ``data``, once it reports ready."""
    command = [sys.executable, "-m", "tests.support.jetstream_peer", "--consortium"]
    proc = subprocess.Popen(
        [*command, str(data), stream, *servers],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        assert selector.select(60), "the peer process did not start within 60 s"
    assert proc.stdout.readline().strip() == "ready"
    return proc


def wait_for(condition: Callable[[], bool], what: str, *, timeout: float = 90.0) -> None:
    """Wait until ``condition()`` holds; fail naming ``what`` after a generous deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still waiting after {timeout:g} s: {what}"
        time.sleep(0.05)


class Load:
    """Transactions sent through several peers from a few threads until stopped; what
    every acknowledged transaction committed as is recorded."""

    def __init__(self, nodes: Sequence[EmbeddedNode], *, threads_per_node: int = 3) -> None:
        self.nodes = list(nodes)
        self.acked: dict[str, ValidationCode] = {}
        self.refused: list[str] = []
        self._threads = threads_per_node
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._next = 0
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> Load:
        """Start sending."""
        self._pool = ThreadPoolExecutor(len(self.nodes) * self._threads)
        for node in self.nodes:
            for _ in range(self._threads):
                self._pool.submit(self._send, node)
        return self

    def _send(self, node: EmbeddedNode) -> None:
        org = next(iter(node.keystore.cas))
        while not self._stop.is_set():
            with self._lock:
                self._next += 1
                n = self._next
            try:
                receipt, _ = node.invoke(
                    f"{org}/admin",
                    "supply",
                    "register_location",
                    {"gln": gln(org, n), "name": f"site {n}"},
                    timeout=60,
                )
            except NodeError as exc:
                # Refused or not acknowledged (a fault is going on): not counted.
                with self._lock:
                    self.refused.append(str(exc))
                time.sleep(0.05)
                continue
            with self._lock:
                self.acked[receipt.tx_id] = receipt.code

    def count(self) -> int:
        """Transactions acknowledged so far."""
        with self._lock:
            return len(self.acked)

    def stop(self) -> None:
        """Stop sending and wait for every request in flight."""
        self._stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def read_ledger(data: Path) -> tuple[list[str], list[str]]:
    """Block hashes and transaction ids (in log order) of a ledger, read only."""
    db = sqlite3.connect(f"file:{data / LEDGER_FILE}?mode=ro", uri=True, timeout=10)
    try:
        hashes = [r[0] for r in db.execute("SELECT hash FROM blocks ORDER BY height")]
        tx_ids = [r[0] for r in db.execute("SELECT tx_id FROM txs ORDER BY log_index")]
    finally:
        db.close()
    return hashes, tx_ids


def height_of(data: Path) -> int:
    """Committed blocks in ``data``'s ledger, read while another process writes it."""
    return len(read_ledger(data)[0])


def assert_same_chains(folders: Sequence[Path], acked: dict[str, ValidationCode]) -> None:
    """Every folder holds the same chain, with every acknowledged transaction exactly
    once and as it was acknowledged."""
    chains = [read_ledger(f) for f in folders]
    hashes, tx_ids = chains[0]
    for other in chains[1:]:
        assert other == chains[0]
    assert len(tx_ids) == len(set(tx_ids)), "a transaction is in the chain twice"
    assert set(acked) <= set(tx_ids), "an acknowledged transaction is missing"
    assert len(hashes) > 1


def main(argv: list[str]) -> None:
    consortium = argv[:1] == ["--consortium"]
    data, stream, *servers = argv[1:] if consortium else argv
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if consortium:
        node: EmbeddedNode = open_peer(Path(data), stream, servers)
    else:
        node = EmbeddedNode(
            Path(data),
            contracts=(*SYSTEM_CONTRACTS, BenchContract),
            resume_orderer=jetstream_ordering(
                servers,
                stream=stream,
                subject_prefix=f"hl.{stream.lower()}",
                max_block_tx=16,
                batch_timeout_s=0.02,
            ),
        )
    node.start()
    print("ready", flush=True)
    stop.wait()
    node.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
