"""``healthledger network up|status|down`` as a real command: three NATS servers and
three peer processes, transactions through different peers' APIs, a common head, and
nothing left running after ``down``; ``network status`` names what is wrong with a
peer (down, stuck, tampered, in the minority, diverged)."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from msgspec.structs import replace

from healthledger.api.app import create_api
from healthledger.apps.registry import installed_contracts
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.network.layout import NatsProcess, Network, PeerProcess
from healthledger.network.processes import alive
from healthledger.network.status import PEER_STATES, peer_state
from healthledger.node.checkpoint import open_note, sign_note
from healthledger.node.checkpoint_guard import CheckpointState
from healthledger.node.consortium_peer import found_consortium
from healthledger.node.embedded import KEYSTORE_FILE, LEDGER_FILE
from healthledger.node.keystore import Keystore
from healthledger.ordering.nats_cluster import NatsCluster
from tests.integration.test_gateway import serve
from tests.support.cli import healthledger, not_running, pids
from tests.support.gs1 import gln
from tests.support.jetstream_peer import CHECKPOINT_EVERY, Load, open_peer, wait_for
from tests.support.members import keystore_reads
from tests.support.nats_cluster import fresh_cluster, nats_cluster

pytestmark = pytest.mark.slow

__all__ = ["nats_cluster"]

ORGS = 3


def demo_invoke(port: int, identity: str, args: dict[str, Any]) -> dict[str, Any]:
    body = {
        "identity": identity,
        "contract": "supply",
        "function": "register_location",
        "args": args,
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/demo/invoke",
        data=json.dumps(body, sort_keys=True, separators=(",", ":")).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def test_network_up_reaches_a_common_head_and_down_leaves_nothing(network_dir: Path) -> None:
    up = healthledger(
        "network", "up", "--orgs", str(ORGS), "--data", str(network_dir), "--checkpoint-every", "2"
    )
    assert up.returncode == 0, up.stderr
    network = Network.load(network_dir)
    assert len(network.peers) == ORGS and len(network.nats) == 3
    running = pids(network_dir)
    assert len(running) == ORGS + 3
    assert not_running(network_dir) == []

    again = healthledger("network", "up", "--orgs", str(ORGS), "--data", str(network_dir))
    assert again.returncode == 1
    assert "already running" in again.stderr and len(again.stderr.strip().splitlines()) == 1

    tx_ids = []
    for i in range(6):
        peer = network.peers[i % ORGS]
        answer = demo_invoke(
            peer.port, f"{peer.org}/admin", {"gln": gln(peer.org, i), "name": f"d{i}"}
        )
        assert answer["receipt"]["valid"]
        tx_ids.append(answer["tx_id"])
    # A peer holds only its own organisation's keys.
    other = network.peers[1]
    with pytest.raises(urllib.error.HTTPError) as refused:
        demo_invoke(
            other.port,
            f"{network.peers[0].org}/admin",
            {"gln": gln(network.peers[0].org, 99), "name": "x"},
        )
    assert refused.value.code == 403

    deadline = time.monotonic() + 30
    while True:
        result = healthledger("network", "status", "--data", str(network_dir), "--json")
        report = json.loads(result.stdout)
        well = all(p["state"] == "ok" for p in report["peers"]) and all(
            s["healthy"] for s in report["nats"]
        )
        assert result.returncode == (0 if well else 1), result.stderr
        heads = {(p["height"], p["block_hash"]) for p in report["peers"]}
        if (len(heads) == 1 and report["peers"][0]["height"] >= 7) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(report["peers"]) == ORGS
    assert all(p["healthy"] and p["lag"] == 0 for p in report["peers"]), report
    assert len(heads) == 1 and report["common_head"]
    assert all(s["healthy"] for s in report["nats"])
    # Every peer signed checkpoints at heights 2, 4, 6; they agree.
    checkpoints = report["checkpoints"]
    assert checkpoints["every"] == 2 and not checkpoints["alarm"], checkpoints
    assert all(p["checkpoint"]["height"] >= 6 and not p["diverged"] for p in report["peers"])
    assert len({p["checkpoint"]["block_hash"] for p in report["peers"]}) == 1
    # Each peer also compared the others' notes, exchanged over NATS, with its own.
    deadline = time.monotonic() + 30
    while True:
        views = [
            json.loads(
                urllib.request.urlopen(f"http://127.0.0.1:{p.port}/api/v1/checkpoints").read()
            )
            for p in network.peers
        ]
        if all(all(o["agrees"] for o in v["peers"]) for v in views) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for view in views:
        assert view["state"] == "ok" and view["serving"] and view["rejected_count"] == 0
        assert [o["agrees"] for o in view["peers"]] == [True] * ORGS, view
    assert all(p["checkpoint_state"] == "ok" and p["serving"] for p in report["peers"])

    # One peer signs a checkpoint of a forked chain: status names it.
    forked = network.peers[2]
    folder = network_dir / "peers" / forked.org
    keystore = Keystore.load(folder / KEYSTORE_FILE)
    [(name, key)] = keystore.peers()
    real = (folder / "checkpoints" / "4.note").read_text()
    honest = open_note(
        real, name=name, public_key=key.public_bytes(), origin=real.split("\n", 1)[0]
    )
    fork = replace(honest, block_hash="00" * 32)
    (folder / "checkpoints" / "4.note").write_text(sign_note(fork, name=name, key=key))
    report = json.loads(
        healthledger("network", "status", "--data", str(network_dir), "--json").stdout
    )
    assert report["checkpoints"]["alarm"]
    [divergence] = report["checkpoints"]["divergences"]
    assert divergence["height"] == 4 and divergence["minority"] == [forked.org]
    assert [p["org"] for p in report["peers"] if p["diverged"]] == [forked.org]
    assert [p["state"] for p in report["peers"]] == ["ok", "ok", "diverged"]
    table = healthledger("network", "status", "--data", str(network_dir))
    assert "ALARM" in table.stdout and "DIVERGED" in table.stdout
    # A note signed by another organisation's key is refused, not counted.
    (folder / "checkpoints" / "4.note").write_text(real.replace(forked.org, network.peers[0].org))
    report = json.loads(
        healthledger("network", "status", "--data", str(network_dir), "--json").stdout
    )
    assert forked.org in report["checkpoints"]["invalid"]

    for tx_id in tx_ids:  # every transaction is on every peer (a members' read)
        for peer in network.peers:
            keys = Keystore.load(network_dir / "peers" / peer.org / KEYSTORE_FILE)
            url = f"http://127.0.0.1:{peer.port}/api/v1/transactions/{tx_id}/receipt"
            answer = httpx.get(url, auth=keystore_reads(keys), timeout=5)
            assert answer.status_code == 200, answer.text
            assert answer.json()["tx_id"] == tx_id

    down = healthledger("network", "down", "--data", str(network_dir))
    assert down.returncode == 0, down.stderr
    assert not any(alive(pid, str(network_dir.absolute())) for pid in running)
    assert healthledger("network", "down", "--data", str(network_dir)).returncode == 0
    after = healthledger("network", "status", "--data", str(network_dir), "--json")
    status = json.loads(after.stdout)
    assert not any(p["healthy"] for p in status["peers"])
    # Every peer down is a failure for a script reading the exit code, said in one line.
    assert after.returncode == 1
    assert after.stderr.startswith(f"error: {ORGS} of {ORGS} peers not ok: ")
    assert len(after.stderr.strip().splitlines()) == 1


def test_network_errors_are_one_line(tmp_path: Path) -> None:
    missing = healthledger("network", "status", "--data", str(tmp_path / "nope"))
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"error: {tmp_path / 'nope'} does not exist"
    empty = tmp_path / "empty"
    empty.mkdir()
    down = healthledger("network", "down", "--data", str(empty))
    assert down.returncode == 2 and "holds no network" in down.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        up = healthledger("network", "up", "--data", str(tmp_path / "n"), "--base-port", str(port))
    assert up.returncode == 2
    assert up.stderr.strip().startswith(f"error: port {port} is already in use")
    assert not (tmp_path / "n").exists()


# --- what status says of a peer ------------------------------------------------------


def wide_status_table(root: Path) -> list[str]:
    """The lines of ``network status`` as a table on an 80-column terminal: no line is
    wider and no cell is cut."""
    result = subprocess.run(
        [sys.executable, "-m", "healthledger.cli.main", "network", "status", "--data", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert result.returncode in (0, 1), result.stderr  # 1: a peer is not ok (said on stderr)
    lines = result.stdout.splitlines()
    # the first line names the network's folder, as long as its path is; the rest fits
    assert lines[0].strip().startswith("network "), result.stdout
    assert max(len(line) for line in lines[1:]) <= 80, result.stdout
    assert "…" not in result.stdout, result.stdout
    return lines


def peer_states(root: Path) -> dict[str, str]:
    result = healthledger("network", "status", "--data", str(root), "--json")
    report = json.loads(result.stdout)
    states = {p["org"]: p["state"] for p in report["peers"]}
    well = set(states.values()) == {"ok"} and all(s["healthy"] for s in report["nats"])
    assert result.returncode == (0 if well else 1), result.stderr
    return states


def test_status_names_a_stuck_a_tampered_and_a_down_peer(
    tmp_path: Path, nats_cluster: NatsCluster
) -> None:
    """Three real consortium peers in this process over real NATS, each serving its
    API over HTTP, described by a ``network.json``; ``network status`` runs as a
    command. One peer's disk refuses blocks (its delivery is stuck), another has a
    stored block changed (its self-check finds it), then the first one's API goes."""
    cluster = fresh_cluster(nats_cluster)
    stream = "STATUS_STATES"
    folders = found_consortium(
        tmp_path / "peers", plans=DEMO_ORGS[:3], contracts=installed_contracts()
    )
    a, b, c = (open_peer(f, stream, cluster.urls).start() for f in folders.values())
    apis = [serve(create_api(node, demo_custody=True), f"peer-{node.org}") for node in (a, b, c)]
    Network(
        orgs=list(folders),
        nats=[
            NatsProcess(cluster.name(i), p.client, p.cluster, p.monitor)
            for i, p in enumerate(cluster.ports)
        ],
        peers=[
            PeerProcess(node.org, int(urlsplit(url).port or 0))
            for node, (_s, _t, url) in zip((a, b, c), apis, strict=True)
        ],
        checkpoint_every=CHECKPOINT_EVERY,
    ).save(tmp_path)
    load = Load([a])
    try:
        wait_for(lambda: a.peer.accepting and b.peer.accepting, "the peers take writes")
        load.start()
        wait_for(lambda: min(n.peer.store.height() for n in (a, b, c)) >= 6, "a few blocks")
        wait_for(lambda: set(peer_states(tmp_path).values()) == {"ok"}, "every peer ok")
        # b's disk refuses blocks: it stops delivering rather than skip one.
        db = sqlite3.connect(b.data_dir / LEDGER_FILE, timeout=30)
        with db:
            db.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON blocks "
                "BEGIN SELECT RAISE(ABORT, 'disk refuses writes'); END"
            )
        db.close()
        # c's stored block 2 is changed in place.
        db = sqlite3.connect(c.data_dir / LEDGER_FILE, timeout=30)
        body = bytes(db.execute("SELECT body FROM blocks WHERE height=2").fetchone()[0])
        tampered = body.replace(b'"name":"site ', b'"name":"SITE ', 1)
        assert tampered != body
        with db:
            db.execute("UPDATE blocks SET body=? WHERE height=2", (tampered,))
        db.close()
        wait_for(lambda: b.consortium_status()["delivery"]["stuck"], "b's delivery is stuck")
        wait_for(lambda: c.guard.state is CheckpointState.TAMPERED, "c finds its tampered block")
        assert peer_states(tmp_path) == {a.org: "ok", b.org: "stuck", c.org: "tampered"}
        table = wide_status_table(tmp_path)
        for org, shown in ((a.org, "ok"), (b.org, "stuck"), (c.org, "TAMPERED")):
            [row] = [line for line in table if f" {org} " in line]
            assert row.rstrip(" │").endswith(shown), row
        assert not any("[" in line for line in table)  # no markup left in the cells
        server, thread, _url = apis[1]
        server.should_exit = True
        thread.join(15)
        assert peer_states(tmp_path)[b.org] == "down"
    finally:
        load.stop()
        for server, thread, _url in apis:
            server.should_exit = True
            thread.join(15)
        for node in (a, b, c):
            node.stop()


def status_item(**changes: Any) -> dict[str, Any]:
    """A reachable, healthy peer's status item, with ``changes``."""
    item = {"height": 9, "healthy": True, "accepting_writes": True, "checkpoint_state": "ok"}
    return item | changes


PEER_STATE_CASES = {
    "ok": (status_item(), False),
    "down": (status_item(height=None, healthy=False, checkpoint_state="tampered"), False),
    "tampered": (status_item(checkpoint_state="tampered", healthy=False), True),
    "minority": (status_item(checkpoint_state="minority", healthy=False), True),
    "diverged": (status_item(checkpoint_state="diverged"), False),
    "stuck": (status_item(delivery_stuck=True, healthy=False), False),
    "no-ordering": (status_item(accepting_writes=False, healthy=False), False),
    "unhealthy": (status_item(healthy=False), False),
}


@pytest.mark.parametrize("state", PEER_STATES)
def test_each_peer_state_is_named_most_serious_first(state: str) -> None:
    item, in_minority = PEER_STATE_CASES[state]
    assert peer_state(item, in_minority=in_minority) == state
    if state == "ok":
        assert peer_state(item, in_minority=True) == "diverged"  # the notes on disk say so
