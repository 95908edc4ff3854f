"""Power cuts of a committing node: each cycle mounts the data folder through
:class:`~tests.support.powercut_fs.PowerCutFs`, runs an embedded node in a child
process that commits small blocks and prints the id of every transaction whose
receipt it got, kills it (SIGKILL) at a seeded random moment, drops every write that
was not synced, and then checks the backing folder as the restarted peer would find
it: the start-up checks pass, every acknowledged transaction is there, and the offline
audit passes. Shared by the bounded test and ``benchmarks/powercut.py``."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from healthledger.cli.bench import bench_node
from healthledger.ledger.audit import audit_store
from healthledger.node.embedded import LEDGER_FILE, open_checked_store
from healthledger.node.endorsers import new_validator
from tests.support.powercut_fs import PowerCutFs

CHILD = r"""
import sys
from pathlib import Path
from healthledger.cli.bench import BENCH_CLIENT
from healthledger.cli.bench_contract import BenchContract
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.node.embedded import EmbeddedNode

data, cycle, synchronous = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
node = EmbeddedNode(
    data,
    contracts=(*SYSTEM_CONTRACTS, BenchContract),
    max_block_tx=4,
    batch_timeout_s=0.002,
    synchronous=synchronous,
).start()
print("ready", flush=True)
i = 0
while True:
    txs = [
        node.peer.endorse(
            node.propose(BENCH_CLIENT, "bench", "put", {"key": f"{cycle}-{i + j}", "value": i})
        )
        for j in range(8)
    ]
    for future in [node.peer.submit(tx, precheck=False) for tx in txs]:
        receipt = future.result(60)
        # Printed only once the commit returned: acknowledged to this client.
        print("ack", receipt.tx_id, flush=True)
    i += 8
"""


@dataclass(frozen=True)
class PowerCutFigures:
    """What a run of power cuts found."""

    cycles: int
    acknowledged: int
    """Transactions whose commit a client saw acknowledged, over all cycles."""
    lost: int
    """Acknowledged transactions missing after the power came back."""
    dropped_bytes: int
    """Unsynced bytes the power cuts dropped (proof that there was something to lose)."""
    synced_bytes: int


class _Child:
    """A committing node process and the transaction ids it acknowledged."""

    def __init__(self, data: Path, cycle: int, synchronous: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(data), f"c{cycle}", synchronous],
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

    def acknowledged(self) -> list[str]:
        return [line.split()[1] for line in list(self.lines) if line.startswith("ack ")]

    def wait_for(self, count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acknowledged()) < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                stderr = self.process.stderr.read() if self.process.stderr else ""
                raise AssertionError(f"the node made no progress: {stderr[-2000:]}")
            time.sleep(0.005)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        self._reader.join(30)


def run_power_cuts(
    root: Path,
    *,
    cycles: int,
    seed: int,
    synchronous: str = "FULL",
    most_acks: int = 40,
    audit: bool = True,
) -> PowerCutFigures:
    """``cycles`` power cuts of a node whose folder lives under ``root``; each cut
    comes after 1 to ``most_acks`` acknowledged transactions plus a random moment."""
    rng = random.Random(seed)
    backing = root / "disk"
    mountpoint = root / "mnt"
    backing.mkdir(parents=True)
    mountpoint.mkdir()
    bench_node(backing / "data").stop()
    acknowledged: list[str] = []
    lost: set[str] = set()
    dropped = synced = 0
    for cycle in range(cycles):
        fs = PowerCutFs(backing, mountpoint)
        fs.mount()
        child = None
        try:
            child = _Child(mountpoint / "data", cycle, synchronous)
            child.wait_for(rng.randint(1, most_acks))
            time.sleep(rng.uniform(0, 0.02))
            child.kill()
        finally:
            if child is not None:
                child.kill()
            fs.power_cut()
        acknowledged += child.acknowledged()
        dropped += fs.dropped_bytes
        synced += fs.synced_bytes
        # The restarted peer: start-up checks, then every acknowledged transaction.
        store = open_checked_store(backing / "data" / LEDGER_FILE)
        try:
            # Every cycle checks every earlier acknowledgement again: a later cut must
            # not take back what an earlier one kept.
            lost.update(tx_id for tx_id in acknowledged if store.tx_location(tx_id) is None)
        finally:
            store.close()
        if audit:
            audit_store(backing / "data" / LEDGER_FILE, validator=new_validator(), workers=0)
    return PowerCutFigures(cycles, len(acknowledged), len(lost), dropped, synced)
