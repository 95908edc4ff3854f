"""Private data staged without an fsync each and written in one sync per batch
survives SIGKILL: a node killed at random moments while committing batches of
private writes never loses the private value of a transaction whose commit it
acknowledged, and the reopened node settles what the kill left pending."""

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

from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.embedded import EmbeddedNode
from tests.conftest import CONTRACTS

pytestmark = pytest.mark.slow

ROUNDS = 3
SEED = 20261124
DOCTOR = "gz-first-hospital/dr-li"

CHILD = r"""
import sys
from pathlib import Path
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.node.embedded import EmbeddedNode
from tests.support.contracts import Notebook

data, round_ = Path(sys.argv[1]), sys.argv[2]
node = EmbeddedNode(
    data, contracts=(*SYSTEM_CONTRACTS, Notebook), max_block_tx=4, batch_timeout_s=0.002
).start()
print("ready", flush=True)
i = 0
while True:
    txs = []
    for j in range(6):
        salted = node.keystore.with_salt({"secret": f"{round_}-{i + j}"})
        signed = node.propose(
            "gz-first-hospital/dr-li", "notebook", "keep_secret",
            {"key": f"{round_}-{i + j}"}, transient=salted,
        )
        txs.append((f"{round_}-{i + j}", node.peer.endorse(signed, transient=salted)))
    futures = node.peer.submit_many([tx for _, tx in txs], precheck=False)
    for (key, _), future in zip(txs, futures):
        receipt = future.result(30)
        # Printed only once the commit returned: acknowledged.
        print("committed", key, receipt.code, flush=True)
    i += 6
"""


def run_child(data: Path, round_: int, rng: random.Random) -> list[str]:
    """Start a committing child, kill it at a random moment; the keys it acknowledged."""
    lines: list[str] = []
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data), f"r{round_}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.endswith("\n"):
                lines.append(line.strip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while not any(line.startswith("committed") for line in lines):
        if process.poll() is not None or time.monotonic() > deadline:
            stderr = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"child made no progress: {lines[-3:]} {stderr[-2000:]}")
        time.sleep(0.01)
    time.sleep(rng.uniform(0.05, 0.5))
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    reader.join(10)
    if process.stderr is not None:
        process.stderr.close()
    acknowledged = [line.split() for line in lines if line.startswith("committed")]
    assert all(code == "VALID" for _, _, code in acknowledged)
    return [key for _, key, _ in acknowledged]


def test_sigkill_loses_no_acknowledged_private_value(tmp_path: Path) -> None:
    data = tmp_path / "data"
    EmbeddedNode.create(data, contracts=CONTRACTS, plans=DEMO_ORGS).stop()
    rng = random.Random(SEED)
    acknowledged: list[str] = []
    for round_ in range(ROUNDS):
        acknowledged += run_child(data, round_, rng)
    node = EmbeddedNode(data, contracts=CONTRACTS).start()  # settles what was pending
    try:
        vault = node.peer.vaults.vault("gz-first-hospital")
        assert vault is not None
        assert acknowledged
        for key in acknowledged:
            entry = vault.entry("gz-first-hospital/secrets", key)
            assert entry is not None and entry["value"] == {"secret": key}, key
        # Nothing committed is left pending: the start settled it from the ledger.
        for tx_id in vault.pending_tx_ids():
            assert node.peer.store.tx_location(tx_id) is None
    finally:
        node.stop()
