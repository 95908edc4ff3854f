"""Crash safety: a node killed with SIGKILL while committing loses no acknowledged block,
and the folder it leaves audits clean and keeps committing.

A child process commits small blocks (at most 4 transactions, cut every 2 ms) in a
loop and prints the height of every block whose commit it saw acknowledged; the
parent kills it at seeded random moments. No hook in the production code pauses a
commit half-way. Instead the blocks are many and small, so the child spends most of
its time inside commits (validating, writing and fsyncing a block), and random kills
land mid-commit in practice: in some rounds the store holds a block the child never
got to acknowledge. The claims checked hold wherever a kill lands.

It runs on both ledger stores: the SQLite file (audited offline as the kill left it) and
a PostgreSQL database (its server keeps running; every block re-derived from what the
server holds, as a node's self-check does).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from healthledger.cli.bench import BENCH_CLIENT, bench_node
from healthledger.cli.bench_contract import BenchContract
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.ledger.audit import audit_store
from healthledger.ledger.block import EncodedBlock
from healthledger.ledger.store import open_store
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.embedded import LEDGER_FILE, EmbeddedNode
from healthledger.node.endorsers import new_validator
from healthledger.node.selfcheck import rederive_block
from tests.support.postgres import postgres_server

pytestmark = pytest.mark.slow

ROUNDS = 5
SEED = 20260417

CHILD = r"""
import sys
from pathlib import Path
from healthledger.cli.bench import BENCH_CLIENT
from healthledger.cli.bench_contract import BenchContract
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.node.embedded import EmbeddedNode

data, round_ = Path(sys.argv[1]), sys.argv[2]
node = EmbeddedNode(
    data, contracts=(*SYSTEM_CONTRACTS, BenchContract), max_block_tx=4, batch_timeout_s=0.002
).start()
print("ready", node.peer.store.height() - 1, flush=True)
i = 0
while True:
    txs = [
        node.peer.endorse(
            node.propose(BENCH_CLIENT, "bench", "put", {"key": f"{round_}-{i + j}", "value": i + j})
        )
        for j in range(8)
    ]
    for future in [node.peer.submit(tx, precheck=False) for tx in txs]:
        receipt = future.result(30)
        # Printed only once the commit returned: an acknowledged, durable block.
        print("committed", receipt.height, flush=True)
    i += 8
"""


class Child:
    """A committing child process and the heights it acknowledged."""

    def __init__(self, data: Path, round_: int) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(data), f"round{round_}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            # A kill can cut the last line short: only whole lines were acknowledged.
            if line.endswith("\n"):
                self.lines.append(line.strip())

    def wait_for_commits(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while sum(1 for line in self.lines if line.startswith("committed")) < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                stderr = self.process.stderr.read() if self.process.stderr else ""
                raise AssertionError(f"child made no progress: {self.lines[-3:]} {stderr[-2000:]}")
            time.sleep(0.01)

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self._reader.join(10)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def ready_height(self) -> int:
        return int(next(line for line in self.lines if line.startswith("ready")).split()[1])

    def acknowledged(self) -> int:
        return max(int(line.split()[1]) for line in self.lines if line.startswith("committed"))


def checked_blocks(data: Path, store: str | None) -> tuple[int, set[str]]:
    """(blocks, validation codes seen) of the ledger as a kill left it, every block
    checked: the SQLite file by the offline audit, a PostgreSQL database by
    re-deriving each block from the stored bytes (links, roots, global-log leaves)."""
    if store is None:
        report = audit_store(data / LEDGER_FILE, validator=new_validator())
        return report.blocks, set(report.codes)
    ledger = open_store(store)
    try:
        prev, codes = None, set()
        for height in range(ledger.height()):
            prev = rederive_block(ledger, height, prev)
            codes.update(str(c) for c in EncodedBlock.decode(ledger.block_bytes(height)).codes)
        return ledger.height(), codes
    finally:
        ledger.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sigkill_mid_commit_loses_no_acknowledged_block(tmp_path: Path, backend: str) -> None:
    data = tmp_path / "data"
    store = postgres_server().create_database() if backend == "postgresql" else None
    bench_node(data, store=store).stop()
    rng = random.Random(SEED)
    acknowledged = 0
    for round_ in range(ROUNDS):
        child = Child(data, round_)
        child.wait_for_commits(1)
        # The reopened node starts from every block acknowledged before the last kill.
        assert child.ready_height() >= acknowledged
        time.sleep(rng.uniform(0.02, 0.4))
        child.kill()
        acknowledged = child.acknowledged()

        # Checked as the kill left it, before any node reopens it.
        blocks, codes = checked_blocks(data, store)
        assert blocks - 1 >= acknowledged, (round_, blocks, acknowledged)
        assert codes == {"VALID"}

    # The last survivor still commits, and the result still checks clean.
    node = EmbeddedNode(data, contracts=(*SYSTEM_CONTRACTS, BenchContract)).start()
    try:
        receipt, _ = node.invoke(BENCH_CLIENT, "bench", "put", {"key": "after", "value": 1})
        assert receipt.code is ValidationCode.VALID
        assert receipt.height > acknowledged
    finally:
        node.stop()
    blocks, _ = checked_blocks(data, store)
    assert blocks - 1 == receipt.height
