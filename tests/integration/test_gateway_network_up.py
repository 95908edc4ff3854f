"""``healthledger network up`` writes each peer's directory, so a transaction whose
policy needs two organisations commits through a real peer process's gateway."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from healthledger.network.layout import Network
from healthledger.node.embedded import KEYSTORE_FILE
from healthledger.node.keystore import Keystore
from healthledger.node.peer_directory import DIRECTORY_FILE, PeerDirectory
from tests.integration.test_gateway import CDC, COMMISSION, REGIONS, WAIT_S
from tests.support.cli import healthledger
from tests.support.members import keystore_reads

pytestmark = pytest.mark.slow


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
        block = httpx.get(
            f"{urls[CDC]}/api/v1/blocks/{receipt['height']}",
            timeout=WAIT_S,
            auth=keystore_reads(Keystore.load(network_dir / "peers" / CDC / KEYSTORE_FILE)),
        )
        if block.status_code == 200:
            break
        assert time.monotonic() < deadline, block.text
        time.sleep(0.2)
    tx = block.json()["block"]["transactions"][receipt["index"]]
    assert {e["endorser"] for e in tx["endorsements"]} == {f"{COMMISSION}/peer0", f"{CDC}/peer0"}
