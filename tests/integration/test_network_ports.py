"""`network up` and a port another program takes between planning and binding: with
ports it chose itself, the peer starts again on a fresh port; the error for a peer
that exits quotes the end of its log."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from healthledger.cli.apps import installed_contracts
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.network.layout import Network, PeerProcess
from healthledger.network.processes import process_state
from healthledger.network.supervisor import PeerExited, Supervisor
from healthledger.ordering.nats_cluster import ServerPorts

pytestmark = pytest.mark.slow


@pytest.fixture
def taken() -> Iterator[socket.socket]:
    """A port some other program listens on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


class TakenPort(Supervisor):
    """Plans ``peer`` as the first peer's port, or ``nats_client`` as the second NATS
    server's client port, and skips the check that they are free: as if another
    program took the port after the check."""

    peer: int | None = None
    nats_client: int | None = None

    def plan_ports(self, orgs: int, base_port: int | None) -> tuple[list[ServerPorts], list[int]]:
        nats_ports, peer_ports = super().plan_ports(orgs, base_port)
        if self.peer is not None:
            peer_ports = [self.peer, *peer_ports[1:]]
        if self.nats_client is not None:
            second = nats_ports[1]
            nats_ports[1] = ServerPorts(self.nats_client, second.cluster, second.monitor)
        return nats_ports, peer_ports

    def check_ports(self, network: Network) -> None:
        pass


@contextmanager
def network_up(supervisor: Supervisor) -> Iterator[tuple[Network, list[str]]]:
    """``up`` of three organisations by ``supervisor`` and what it said; down after."""
    said: list[str] = []
    supervisor.say = said.append
    try:
        yield (
            supervisor.up(
                plans=DEMO_ORGS[:3],
                contracts=installed_contracts(),
                base_port=None,
                timeout=120.0,
            ),
            said,
        )
    finally:
        Supervisor(supervisor.root).down(timeout=5.0)


def taken_port(root: Path, *, peer: int | None = None, nats_client: int | None = None) -> TakenPort:
    supervisor = TakenPort(root)
    supervisor.peer, supervisor.nats_client = peer, nats_client
    return supervisor


def test_a_peer_whose_port_was_taken_starts_on_a_fresh_one(
    tmp_path: Path, taken: socket.socket
) -> None:
    port = taken.getsockname()[1]
    with network_up(taken_port(tmp_path / "net", peer=port)) as (started, said):
        first = started.peers[0]
        assert first.port != port
        assert Network.load(tmp_path / "net").peers[0].port == first.port
        assert any("port taken" in line for line in said)


class OtherChain(BaseHTTPRequestHandler):
    """A healthy peer of another chain, as another network's peer on this machine."""

    def do_GET(self) -> None:
        body = json.dumps({"accepting_writes": True, "genesis_hash": "0" * 64}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_another_chains_peer_on_a_peers_port_is_not_taken_for_it(tmp_path: Path) -> None:
    other = ThreadingHTTPServer(("127.0.0.1", 0), OtherChain)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    port = other.server_address[1]
    supervisor = taken_port(tmp_path / "net", peer=port)
    try:
        with network_up(supervisor) as (started, said):
            # The answer from the other chain did not count: the peer was started elsewhere.
            assert started.peers[0].port != port
            assert any("port taken" in line for line in said)
            assert supervisor.alive(started.peers[0].pid)
    finally:
        other.shutdown()
        other.server_close()


def test_a_nats_port_taken_meanwhile_moves_the_new_cluster(
    tmp_path: Path, taken: socket.socket
) -> None:
    port = taken.getsockname()[1]
    supervisor = taken_port(tmp_path / "net", nats_client=port)
    with network_up(supervisor) as (started, said):
        assert port not in started.ports
        assert Network.load(tmp_path / "net").nats[1].client != port
        assert any("NATS port was taken" in line for line in said)
        assert all(supervisor.alive(n.pid) for n in started.nats)


def test_the_error_for_an_exited_peer_quotes_its_log(tmp_path: Path) -> None:
    log = tmp_path / "gd-cdc.log"
    log.write_text("starting\n\nERROR: [Errno 98] address already in use\n", encoding="utf-8")
    error = PeerExited(PeerProcess("gd-cdc", 8123), log)
    assert "address already in use" in str(error)
    assert error.log_tail.endswith("address already in use")
    empty = PeerExited(PeerProcess("gd-cdc", 8123), tmp_path / "missing.log")
    assert "its log is empty" in str(empty)


class KillsOnce(Supervisor):
    """Kills the peer of gd-cdc right after its first launch."""

    killed: list[int]

    def launch_peer(self, network: Network, peer: PeerProcess) -> None:
        super().launch_peer(network, peer)
        killed = self.killed
        if peer.org == "gd-cdc" and not killed and peer.pid is not None:
            os.kill(peer.pid, signal.SIGKILL)  # before it can write a line
            killed.append(peer.pid)
            while process_state(peer.pid)[0] not in ("Z", None):
                time.sleep(0.01)
            # Another launch meanwhile: subprocess reaps the children it was handed
            # back, which must not take the exit status that says how the peer ended.
            subprocess.run(["/bin/true"], check=True)


def test_a_peer_ended_from_outside_during_start_up_is_started_again(tmp_path: Path) -> None:
    supervisor = KillsOnce(tmp_path / "net")
    killed = supervisor.killed = []
    with network_up(supervisor) as (started, said):
        assert killed
        [again] = [line for line in said if "starting it again" in line]
        assert "gd-cdc" in again and "killed by SIGKILL" in again
        cdc = next(p for p in started.peers if p.org == "gd-cdc")
        assert cdc.pid not in killed
