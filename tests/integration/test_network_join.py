"""A peer joined into a network made by ``healthledger network up`` belongs to it:
``network new-org``, ``network admit`` and ``network join --data DIR/peers/ORG``
record the new organisation's peer in ``network.json`` and start it in the background
as ``up`` starts the others; ``network status`` lists it (height, head, lag, state)
and ``network down`` stops it with the rest. An organisation whose peer was lost joins
again into its folder the same way, in place of its old record.

Real commands in real processes: three NATS servers and three founding peers started
by ``network up``, then the joined peer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
from pathlib import Path
from typing import Any

import pytest

from healthledger.network.layout import Network, PeerProcess
from healthledger.network.processes import alive
from healthledger.node.embedded import KEYSTORE_FILE, NODE_FILE
from tests.integration.test_network import demo_invoke
from tests.support.cli import healthledger
from tests.support.gs1 import gln, gln_in

pytestmark = pytest.mark.slow

NEW = "zhuhai-clinic"
NEW_PREFIX = "6952001"
"""The new clinic's own GS1 company prefix (for the places it registers)."""
WAIT_S = 120.0
"""A generous bound on waiting for the network to reach a state; never a speed claim."""


def status_table(root: Path) -> str:
    """``network status`` as a table on an 80-column terminal: no line is wider and no
    cell is cut."""
    result = subprocess.run(
        [sys.executable, "-m", "healthledger.cli.main", "network", "status", "--data", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert result.returncode in (0, 1), result.stderr  # 1: a peer is not ok (said on stderr)
    # the first line names the network's folder, as long as its path is; the rest fits
    lines = result.stdout.splitlines()
    assert lines[0].strip().startswith("network "), result.stdout
    assert max(len(line) for line in lines[1:]) <= 80, result.stdout
    assert "…" not in result.stdout, result.stdout
    return result.stdout


def status_json(root: Path) -> dict[str, Any]:
    result = healthledger("network", "status", "--data", str(root), "--json")
    report: dict[str, Any] = json.loads(result.stdout)
    well = all(p["state"] == "ok" for p in report["peers"]) and all(
        s["healthy"] for s in report["nats"]
    )
    assert result.returncode == (0 if well else 1), result.stderr
    return report


def row_of(table: str, org: str) -> str:
    [row] = [line for line in table.splitlines() if f" {org} " in line]
    return row


class Traffic:
    """Transactions through one founding peer until stopped, so checkpoints keep coming."""

    def __init__(self, port: int, org: str) -> None:
        self.port, self.org = port, org
        self.done = threading.Event()
        self.sent = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.done.set()
        self._thread.join(60)

    def _run(self) -> None:
        while not self.done.is_set():
            self.sent += 1
            args = {"gln": gln(self.org, 500 + self.sent), "name": f"join site {self.sent}"}
            try:
                demo_invoke(self.port, f"{self.org}/admin", args)
            except (OSError, urllib.error.HTTPError):
                time.sleep(0.2)  # counted by nobody: the test only needs blocks


def test_a_joined_peer_is_listed_by_status_and_stopped_by_down(
    network_dir: Path, tmp_path: Path
) -> None:
    root = str(network_dir)
    up = healthledger("network", "up", "--orgs", "3", "--data", root, "--checkpoint-every", "2")
    assert up.returncode == 0, up.stderr
    founders = Network.load(network_dir)
    first = founders.peers[0]
    for i in range(3):
        demo_invoke(
            first.port, f"{first.org}/admin", {"gln": gln(first.org, i), "name": f"site {i}"}
        )

    made = healthledger(
        "network",
        "new-org",
        "--data",
        root,
        "--org",
        NEW,
        "--name",
        "Zhuhai",
        "--kind",
        "hospital",
        "--gs1-prefix",
        NEW_PREFIX,
    )
    assert made.returncode == 0, made.stderr
    admitted = healthledger("network", "admit", "--data", root, "--org", NEW)
    assert admitted.returncode == 0, admitted.stderr
    source = f"http://127.0.0.1:{first.port}"

    # --port means nothing for a folder outside a network: refused before anything.
    outside = tmp_path / "elsewhere"
    refused = healthledger(
        "network", "join", "--org", NEW, "--from", source, "--data", str(outside), "--port", "1"
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: --port applies only to a peer folder of a network (DIR/peers/ORG of "
        "'healthledger network up')"
    ]
    assert Network.load(network_dir) == founders

    folder = network_dir / "peers" / NEW
    with Traffic(first.port, first.org):  # checkpoints after the admission vouch for it
        joined = healthledger(
            "network", "join", "--org", NEW, "--from", source, "--data", str(folder)
        )
    assert joined.returncode == 0, joined.stderr
    assert "runs in the background" in joined.stdout
    assert "not checked" not in joined.stdout  # the network's NATS URLs were used
    assert json.loads((folder / NODE_FILE).read_text())["org"] == NEW
    network = Network.load(network_dir)
    [peer] = [p for p in network.peers if p.org == NEW]
    assert peer.joined and NEW in network.orgs
    assert alive(peer.pid, str(network_dir.absolute()))
    assert [p for p in network.peers if p.org != NEW] == founders.peers  # untouched
    # Every peer's directory names the joined peer, for endorsements it is asked for.
    for org in network.orgs:
        directory = json.loads((network_dir / "peers" / org / "directory.json").read_text())
        assert directory["peers"][NEW] == f"http://127.0.0.1:{peer.port}", directory

    # The joined peer catches up and status lists it like the founders.
    answer = demo_invoke(
        peer.port, f"{NEW}/admin", {"gln": gln_in(NEW_PREFIX, 900), "name": "clinic"}
    )
    assert answer["receipt"]["valid"]
    deadline = time.monotonic() + WAIT_S
    while True:
        report = status_json(network_dir)
        states = {p["org"]: (p["state"], p["lag"]) for p in report["peers"]}
        if set(states.values()) == {("ok", 0)} and report["common_head"]:
            break
        assert time.monotonic() < deadline, report
        time.sleep(0.5)
    [item] = [p for p in report["peers"] if p["org"] == NEW]
    assert item["height"] > answer["receipt"]["height"] and item["healthy"]
    assert item["pid"] == peer.pid and item["url"] == f"http://127.0.0.1:{peer.port}/"
    assert len(report["peers"]) == 4 and not report["checkpoints"]["alarm"], report
    row = row_of(status_table(network_dir), NEW)
    assert row.split()[1] == str(peer.port) and row.rstrip(" │").endswith("ok"), row

    # A founding peer killed: status says so, the joined one is still fine.
    gone = network.peers[2]
    assert gone.pid is not None
    os.kill(gone.pid, 9)
    deadline = time.monotonic() + WAIT_S
    while alive(gone.pid, str(network_dir.absolute())):
        assert time.monotonic() < deadline, "the killed peer is still running"
        time.sleep(0.1)
    report = status_json(network_dir)
    states = {p["org"]: p["state"] for p in report["peers"]}
    assert states[gone.org] == "down" and states[NEW] == "ok", states
    assert "down" in row_of(status_table(network_dir), gone.org)

    # Its machine lost: the organisation joins again into its folder, on its old port.
    lost = network_dir / "peers" / gone.org
    saved = tmp_path / "keystore.json"
    shutil.copyfile(lost / KEYSTORE_FILE, saved)
    shutil.move(lost, tmp_path / "lost")
    with Traffic(first.port, first.org):
        rejoined = healthledger(
            "network", "join", "--org", gone.org, "--from", source, "--data", str(lost),
            "--keystore", str(saved),
        )  # fmt: skip
    assert rejoined.returncode == 0, rejoined.stderr
    network = Network.load(network_dir)
    [again] = [p for p in network.peers if p.org == gone.org]
    assert again.port == gone.port and not again.joined and again.pid != gone.pid
    assert len(network.peers) == 4 and network.orgs.count(gone.org) == 1
    deadline = time.monotonic() + WAIT_S
    while True:
        report = status_json(network_dir)
        if {(p["state"], p["lag"]) for p in report["peers"]} == {("ok", 0)}:
            break
        assert time.monotonic() < deadline, report
        time.sleep(0.5)

    down = healthledger("network", "down", "--data", root)
    assert down.returncode == 0, down.stderr
    assert "stopped 7 processes" in down.stdout  # three NATS servers, four peers
    assert not alive(peer.pid, str(network_dir.absolute()))
    assert not alive(again.pid, str(network_dir.absolute()))
    stopped = {p.org: p for p in Network.load(network_dir).peers}
    assert stopped[NEW] == PeerProcess(NEW, peer.port, None, joined=True)

    # Restarted with the founders: still founded by three, the joined peer comes back.
    restarted = healthledger("network", "up", "--orgs", "3", "--data", root)
    assert restarted.returncode == 0, restarted.stderr
    assert f"peer {NEW}: http://127.0.0.1:{peer.port}/" in restarted.stdout
    report = status_json(network_dir)
    assert {p["org"]: p["state"] for p in report["peers"]} == dict.fromkeys(stopped, "ok")
