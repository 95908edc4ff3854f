"""``healthledger network up`` writes each peer's directory, so a transaction whose
policy needs two organisations commits through a real peer process's gateway."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from healthledger.cli.network import Network, alive
from healthledger.node.gateway import DIRECTORY_FILE, PeerDirectory
from tests.integration.test_gateway import CDC, COMMISSION, REGIONS, WAIT_S

pytestmark = pytest.mark.slow


def healthledger(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real CLI."""
    return subprocess.run(
        [sys.executable, "-m", "healthledger.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def network_dir(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "net"
    yield root
    if (root / "network.json").exists():
        network = Network.load(root)
        started = [p.pid for p in network.peers if p.pid] + [n.pid for n in network.nats if n.pid]
        healthledger("network", "down", "--data", str(root), "--timeout", "5")
        for pid in started:  # never leave a process behind, even when the test failed
            if alive(pid, str(root.absolute())):
                os.kill(pid, 9)


def test_network_up_peers_endorse_across_organisations(network_dir: Path) -> None:
    up = healthledger(
        "network", "up", "--orgs", "3", "--data", str(network_dir), "--checkpoint-every", "2"
    )
    assert up.returncode == 0, up.stderr
    network = Network.load(network_dir)
    urls = {p.org: f"http://127.0.0.1:{p.port}" for p in network.peers}
    for org in urls:
        directory = PeerDirectory.load(network_dir / "peers" / org / DIRECTORY_FILE)
        assert dict(directory.peers) == urls
    answer = httpx.post(
        f"{urls[COMMISSION]}/api/v1/demo/invoke",
        json={
            "identity": f"{COMMISSION}/admin",
            "contract": "epidemic",
            "function": "define_regions",
            "args": {"regions": REGIONS},
        },
        timeout=WAIT_S,
    )
    assert answer.status_code == 200, answer.text
    receipt = answer.json()["receipt"]
    deadline = time.monotonic() + WAIT_S
    while True:
        block = httpx.get(f"{urls[CDC]}/api/v1/blocks/{receipt['height']}", timeout=WAIT_S)
        if block.status_code == 200:
            break
        assert time.monotonic() < deadline, block.text
        time.sleep(0.2)
    tx = block.json()["block"]["transactions"][receipt["index"]]
    assert {e["endorser"] for e in tx["endorsements"]} == {f"{COMMISSION}/peer0", f"{CDC}/peer0"}
