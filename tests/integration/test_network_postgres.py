"""``healthledger network up --store`` and ``network join --store`` on a real PostgreSQL
server: founders whose ledgers are a database each on one server (created by ``up``,
named after the network folder and the organisation), and a peer joined from a snapshot
into an empty database; ``network status`` and ``down`` work on them as on SQLite.

Real commands in real processes: three NATS servers, the peers, and the test process's
PostgreSQL server (``tests.support.postgres``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from healthledger.network.layout import NETWORK_FILE, Network
from healthledger.network.processes import alive
from healthledger.network.stores import database_name
from healthledger.node.embedded import LEDGER_FILE, NODE_FILE
from healthledger.node.parts import STORE_KEY
from tests.integration.test_network import demo_invoke
from tests.integration.test_network_join import NEW, NEW_PREFIX, WAIT_S, Traffic, status_json
from tests.support.cli import healthledger, pids
from tests.support.gs1 import gln, gln_in
from tests.support.postgres import postgres_server

pytestmark = pytest.mark.slow


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_network_up_on_postgresql_commits_on_every_peer_and_comes_down(network_dir: Path) -> None:
    server = postgres_server()
    root = str(network_dir)
    # The server's URL without a database: one database per organisation on it.
    shared = server.url("")

    # Refused in one line before anything is made: both forms at once, a password.
    mixed = healthledger("network", "up", "--data", root, "--store", shared,
                         "--store", f"gd-cdc={server.url('x')}")  # fmt: skip
    assert mixed.returncode == 2
    assert "either one server URL" in one_line(mixed.stderr)
    secret = shared.replace("healthledger@", "healthledger:s3cret-pw@")
    with_password = healthledger("network", "up", "--data", root, "--store", secret)
    assert with_password.returncode == 2
    assert "PGPASSFILE" in one_line(with_password.stderr)
    assert "s3cret-pw" not in with_password.stderr + with_password.stdout
    assert not network_dir.exists()

    up = healthledger("network", "up", "--orgs", "3", "--data", root,
                      "--checkpoint-every", "2", "--store", shared)  # fmt: skip
    assert up.returncode == 0, up.stderr
    network = Network.load(network_dir)
    databases = {}
    for peer in network.peers:
        folder = network_dir / "peers" / peer.org
        recorded = json.loads((folder / NODE_FILE).read_text())[STORE_KEY]
        name = database_name(network_dir, peer.org)
        assert server.dbname(recorded) == name == f"net_{peer.org.replace('-', '_')}"
        assert not (folder / LEDGER_FILE).exists()
        assert f"the ledger of {peer.org} is in " in up.stdout
        databases[peer.org] = recorded
    assert "postgresql" not in (network_dir / NETWORK_FILE).read_text()

    tx_ids = []
    for i in range(4):
        peer = network.peers[i % 3]
        answer = demo_invoke(
            peer.port, f"{peer.org}/admin", {"gln": gln(peer.org, i), "name": f"pg {i}"}
        )
        assert answer["receipt"]["valid"]
        tx_ids.append(answer["tx_id"])

    deadline = time.monotonic() + WAIT_S
    while True:
        report = status_json(network_dir)
        heads = {(p["height"], p["block_hash"]) for p in report["peers"]}
        # Each peer's checkpoints verified with a ledger on PostgreSQL.
        signed = [p["checkpoint"] for p in report["peers"] if p["checkpoint"] is not None]
        if len(heads) == 1 and report["common_head"] and len(signed) == 3:
            break
        assert time.monotonic() < deadline, report
        time.sleep(0.5)
    [(height, head)] = heads
    assert height >= 5 and all(p["state"] == "ok" for p in report["peers"]), report
    assert not report["checkpoints"]["alarm"], report["checkpoints"]
    for org, url in databases.items():
        assert server.execute(url, "SELECT max(height), count(*) FROM blocks") == [
            (height - 1, height)
        ], org
        assert server.execute(url, f"SELECT hash FROM blocks WHERE height = {height - 1}") == [
            (head,)
        ]
        quoted = ", ".join(f"'{tx_id}'" for tx_id in tx_ids)
        found = server.execute(url, f"SELECT count(*) FROM txs WHERE tx_id IN ({quoted})")
        assert found == [(len(tx_ids),)], org

    running = pids(network_dir)
    down = healthledger("network", "down", "--data", root)
    assert down.returncode == 0, down.stderr
    assert not any(alive(pid, str(network_dir.absolute())) for pid in running)

    # Up again: the peers resume on their databases; the same --store is accepted, another
    # is refused (a restart moves no ledger).
    other = healthledger("network", "up", "--data", root, "--store",
                         f"{network.peers[0].org}={server.url('another')}")  # fmt: skip
    assert other.returncode == 2 and "moves no ledger" in one_line(other.stderr)
    again = healthledger("network", "up", "--data", root, "--store", shared)
    assert again.returncode == 0, again.stderr
    report = status_json(network_dir)
    assert {p["height"] for p in report["peers"]} == {height}, report


def test_a_peer_joins_from_a_snapshot_into_an_empty_postgresql_database(
    network_dir: Path,
) -> None:
    server = postgres_server()
    root = str(network_dir)
    up = healthledger("network", "up", "--orgs", "3", "--data", root, "--checkpoint-every", "2")
    assert up.returncode == 0, up.stderr
    first = Network.load(network_dir).peers[0]
    for i in range(2):
        demo_invoke(first.port, f"{first.org}/admin", {"gln": gln(first.org, i), "name": f"s{i}"})
    made = healthledger("network", "new-org", "--data", root, "--org", NEW, "--name", "Zhuhai",
                        "--kind", "hospital", "--gs1-prefix", NEW_PREFIX)  # fmt: skip
    assert made.returncode == 0, made.stderr
    admitted = healthledger("network", "admit", "--data", root, "--org", NEW)
    assert admitted.returncode == 0, admitted.stderr
    source = f"http://127.0.0.1:{first.port}"
    folder = network_dir / "peers" / NEW

    # A database that holds anything, or a URL with a password: refused in one line,
    # before the peer is registered or anything is installed.
    used = server.create_database()
    server.execute(used, "CREATE TABLE patients (id TEXT)")
    refused = healthledger("network", "join", "--org", NEW, "--from", source,
                           "--data", str(folder), "--store", used)  # fmt: skip
    assert refused.returncode != 0
    assert "is not empty (it holds the table public.patients)" in one_line(refused.stderr)
    secret = used.replace("healthledger@", "healthledger:s3cret-pw@")
    refused = healthledger("network", "join", "--org", NEW, "--from", source,
                           "--data", str(folder), "--store", secret)  # fmt: skip
    assert refused.returncode == 2 and "PGPASSWORD" in one_line(refused.stderr)
    assert "s3cret-pw" not in refused.stderr
    assert not (folder / NODE_FILE).exists()

    target = server.create_database()
    with Traffic(first.port, first.org):  # checkpoints after the admission vouch for it
        joined = healthledger("network", "join", "--org", NEW, "--from", source,
                              "--data", str(folder), "--store", target)  # fmt: skip
    assert joined.returncode == 0, joined.stderr
    assert "runs in the background" in joined.stdout
    assert json.loads((folder / NODE_FILE).read_text())[STORE_KEY] == target
    assert not list(folder.glob(f"{LEDGER_FILE}*"))  # neither the ledger nor the replay's file
    [(installed,)] = server.execute(target, "SELECT count(*) FROM blocks")
    assert installed > 0

    # The joined peer, started on its database, commits its own write and reaches the
    # others' height.
    peer = next(p for p in Network.load(network_dir).peers if p.org == NEW)
    answer = demo_invoke(
        peer.port, f"{NEW}/admin", {"gln": gln_in(NEW_PREFIX, 901), "name": "pg clinic"}
    )
    assert answer["receipt"]["valid"]
    deadline = time.monotonic() + WAIT_S
    while True:
        report = status_json(network_dir)
        states = {(p["state"], p["lag"]) for p in report["peers"]}
        if states == {("ok", 0)} and report["common_head"] and len(report["peers"]) == 4:
            break
        assert time.monotonic() < deadline, report
        time.sleep(0.5)
    [item] = [p for p in report["peers"] if p["org"] == NEW]
    assert item["height"] > answer["receipt"]["height"]
    assert server.execute(target, "SELECT max(height) FROM blocks") == [(item["height"] - 1,)]
