"""Bringing a whole consortium up and down on this machine (ARCHITECTURE.md section 5):
a three-server NATS JetStream cluster and one peer process per organisation, each with
its own data folder, keys and API port (the folder's layout: :mod:`.layout`).

Every process is started in its own session, so it outlives the operation that
started it; :meth:`Supervisor.down` stops them by process id (SIGTERM, then SIGKILL
after a timeout). A peer brought in later by a join into ``DIR/peers/<org>`` is
recorded beside the founders' (``joined``), started by :meth:`Supervisor.launch_peer`
as they are, and stopped by ``down``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import astuple
from pathlib import Path

from healthledger.contracts.contract import Contract
from healthledger.ledger.errors import LedgerError
from healthledger.ledger.store import open_store
from healthledger.network.client import NetworkClient
from healthledger.network.errors import UNUSABLE, NetworkError
from healthledger.network.layout import (
    NETWORK_FILE,
    NatsProcess,
    Network,
    PeerProcess,
    peer_ledger,
)
from healthledger.network.processes import Processes, port_free
from healthledger.network.stores import StoreChoice, prepare_stores, store_urls
from healthledger.node.consortium import OrgPlan
from healthledger.node.consortium_peer import found_consortium
from healthledger.node.defaults import DEFAULT_CHECKPOINT_EVERY
from healthledger.node.parts import STORE_KEY, node_info, shown_location
from healthledger.node.peer_directory import write_directories
from healthledger.ordering.nats_cluster import (
    NatsCluster,
    NatsClusterError,
    ServerPorts,
    free_port,
    free_ports,
    fresh_server_ports,
)

NATS_SERVERS = 3
MIN_ORGS = 3
REBIND_ATTEMPTS = 3
"""Starts of a peer during start-up: again on a fresh port when another program took
its self-chosen one, or again as it was when it ended without writing a line."""
LOG_TAIL_LINES = 5
"""Lines of an exited peer's log quoted in the error."""
PORT_IN_USE = "address already in use"
POLL_S = 0.2

Say = Callable[[str], None]
Progress = Callable[[int, int], None]
"""Told ``(done, total)`` as the parts of a network come up."""


def _quiet(_message: str) -> None:
    pass


class PeerExited(NetworkError):
    """A peer process ended while starting; ``log_tail`` quotes the end of its log."""

    def __init__(self, peer: PeerProcess, log: Path, how: str = "") -> None:
        try:
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = []
        self.peer = peer
        self.log_tail = "\n".join(line for line in lines[-LOG_TAIL_LINES:] if line.strip())
        quoted = f"; its log ends: {self.log_tail}" if self.log_tail else " (its log is empty)"
        super().__init__(
            f"the peer of {peer.org} exited{f' ({how})' if how else ''}; see {log}{quoted}"
        )


class Supervisor:
    """Starts, watches and stops the processes of the network in folder ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        say: Say = _quiet,
        progress: Progress | None = None,
        processes: Processes | None = None,
    ) -> None:
        self.root = Path(root).absolute()
        self.say = say
        self.progress = progress
        self.processes = processes or Processes(str(self.root))

    def alive(self, pid: int | None) -> bool:
        """True if ``pid`` is a running process of this network."""
        return self.processes.alive(pid)

    # --- up ----------------------------------------------------------------------------

    def up(
        self,
        *,
        plans: Sequence[OrgPlan],
        contracts: Sequence[type[Contract]],
        base_port: int | None,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        timeout: float = 60.0,
        stores: StoreChoice | None = None,
    ) -> Network:
        """Found the network of ``plans`` in the folder (or restart the one it holds)
        and wait until every part is healthy. ``stores``: the PostgreSQL databases the
        founders' ledgers go in (:mod:`.stores`); a restart checks they are where the
        peers keep them."""
        stores = stores or StoreChoice()
        root = self.root
        if checkpoint_every < 1:
            raise NetworkError("--checkpoint-every must be at least 1", UNUSABLE)
        if len(plans) < MIN_ORGS:
            raise NetworkError(f"a network needs at least {MIN_ORGS} organisations", UNUSABLE)
        if root.exists() and not root.is_dir():
            raise NetworkError(f"{root} is not a folder", UNUSABLE)
        if not root.parent.is_dir():
            raise NetworkError(f"{root.parent} does not exist", UNUSABLE)
        rebind = False
        if (root / NETWORK_FILE).exists():
            network = Network.load(root)
            pids = [n.pid for n in network.nats] + [p.pid for p in network.peers]
            if any(self.alive(pid) for pid in pids):
                raise NetworkError(
                    f"a network is already running in {root}; run "
                    f"'healthledger network down --data {root}' first"
                )
            founders = sum(not p.joined for p in network.peers)
            if founders != len(plans):
                raise NetworkError(
                    f"{root} holds a network founded by {founders} organisations, not {len(plans)}",
                    UNUSABLE,
                )
            if stores:
                self._check_stores(stores, [p.org for p in network.peers if not p.joined])
            self.say(f"restarting the network in {root}")
        else:
            if root.is_dir() and any(root.iterdir()):
                raise NetworkError(f"{root} is not empty and holds no network", UNUSABLE)
            nats_ports, peer_ports = self.plan_ports(len(plans), base_port)
            rebind = base_port is None
            network = Network(
                orgs=[p.id for p in plans],
                nats=[
                    NatsProcess(f"n{i + 1}", p.client, p.cluster, p.monitor)
                    for i, p in enumerate(nats_ports)
                ],
                peers=[PeerProcess(p.id, port) for p, port in zip(plans, peer_ports, strict=True)],
                checkpoint_every=checkpoint_every,
            )
            self.check_ports(network)
            databases = prepare_stores(stores, root=root, orgs=network.orgs) if stores else {}
            root.mkdir(exist_ok=True)
            found_consortium(root / "peers", plans=plans, contracts=contracts, stores=databases)
            network.save(root)
            self.say(f"founded a consortium of {len(plans)} organisations in {root}")
            for org, url in databases.items():
                self.say(f"the ledger of {org} is in {shown_location(url)}")
        self.check_ports(network)
        try:
            self._start(network, timeout=timeout, rebind=rebind)
        except BaseException:
            Supervisor(root, processes=self.processes).down(timeout=5.0)
            raise
        return network

    def _check_stores(self, stores: StoreChoice, orgs: Sequence[str]) -> None:
        """NetworkError unless ``stores`` names where the founders ``orgs`` of the
        network in the folder keep their ledgers (a restart moves no ledger)."""
        for org, url in store_urls(stores, root=self.root, orgs=orgs).items():
            recorded = node_info(self.root / "peers" / org).get(STORE_KEY)
            if recorded != url:
                where = shown_location(str(recorded)) if recorded else "ledger.sqlite"
                raise NetworkError(
                    f"the peer of {org} keeps its ledger in {where}, not in "
                    f"{shown_location(url)}: a restart moves no ledger",
                    UNUSABLE,
                )

    def plan_ports(self, orgs: int, base_port: int | None) -> tuple[list[ServerPorts], list[int]]:
        """Ports of the NATS servers and of ``orgs`` peers: free ones chosen here, or a
        block from ``base_port`` (NATS takes nine, then one per peer after a gap)."""
        if base_port is None:
            ports = free_ports(3 * NATS_SERVERS + orgs)
            nats = [ServerPorts(*ports[3 * i : 3 * i + 3]) for i in range(NATS_SERVERS)]
            return nats, ports[3 * NATS_SERVERS :]
        nats = [
            ServerPorts(base_port + 3 * i, base_port + 3 * i + 1, base_port + 3 * i + 2)
            for i in range(NATS_SERVERS)
        ]
        first_peer = base_port + 3 * NATS_SERVERS + 1
        return nats, [first_peer + i for i in range(orgs)]

    def check_ports(self, network: Network) -> None:
        """NetworkError unless every port of ``network`` is in range and free."""
        ports = [p for n in network.nats for p in (n.client, n.cluster, n.monitor)]
        ports += [p.port for p in network.peers]
        if max(ports) > 65535 or min(ports) < 1:
            raise NetworkError(f"ports {min(ports)}-{max(ports)} are out of range", UNUSABLE)
        for port in ports:
            if not port_free(port):
                raise NetworkError(
                    f"port {port} is already in use on 127.0.0.1; stop what uses it or "
                    "choose another --base-port",
                    UNUSABLE,
                )

    def _start(self, network: Network, *, timeout: float, rebind: bool) -> None:
        """Start the NATS servers, then the peers, and wait until all are healthy. With
        ``rebind`` (a network just founded on ports this operation chose itself), a
        server or peer whose port another program took meanwhile is started again on a
        fresh port."""
        total = 1 + len(network.peers)
        self._advance(0, total)
        self._start_nats(network, timeout=timeout, rebind=rebind)
        self._advance(1, total)
        self.say(f"NATS JetStream cluster up: {', '.join(network.servers)}")
        # Each peer's gateway reaches the other organisations' peers through this directory.
        write_directories(self.root / "peers", network.urls)
        self.start_peers(network, network.peers, timeout=timeout, rebind=rebind, counted=1)
        ended = [n for n in network.nats if not self.alive(n.pid)]
        if ended:
            names = ", ".join(n.name for n in ended)
            raise NetworkError(
                f"NATS server {names} ended while the peers started; see "
                + ", ".join(str(self.root / "nats" / n.name / "server.log") for n in ended)
            )

    def _advance(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)

    def _start_nats(self, network: Network, *, timeout: float, rebind: bool) -> None:
        """Start the NATS servers of ``network`` and wait for a JetStream meta leader."""
        root = self.root
        for attempt in range(1, REBIND_ATTEMPTS + 1):
            try:
                cluster = NatsCluster(
                    root / "nats",
                    size=len(network.nats),
                    ports=[ServerPorts(n.client, n.cluster, n.monitor) for n in network.nats],
                    detached=True,
                )
            except NatsClusterError as exc:
                raise NetworkError(str(exc)) from exc
            cluster.write_configs()
            for i in range(cluster.size):
                cluster.launch(i)
                network.nats[i].pid = cluster.pid(i)
            network.save(root)
            try:
                cluster.wait_ready(timeout=timeout)
                return
            except NatsClusterError as exc:
                if not (rebind and attempt < REBIND_ATTEMPTS and cluster.port_taken()):
                    raise NetworkError(str(exc)) from exc
                # A new cluster holds nothing yet: start it afresh on other ports.
                cluster.stop()
                shutil.rmtree(root / "nats")
                fresh = fresh_server_ports(len(network.nats), avoid=network.ports)
                for server, ports in zip(network.nats, fresh, strict=True):
                    server.client, server.cluster, server.monitor = astuple(ports)
                    server.pid = None
                network.save(root)
                self.say("a NATS port was taken meanwhile: starting the cluster on fresh ports")
            finally:
                cluster.release()

    def start_peers(
        self,
        network: Network,
        peers: Sequence[PeerProcess],
        *,
        timeout: float,
        rebind: bool,
        counted: int = 0,
    ) -> None:
        """Launch ``peers`` and wait until every one serves and takes writes. With
        ``rebind`` (ports chosen by this operation, not by the operator), a peer whose
        port another program took meanwhile is started again on a fresh port, and every
        peer directory names the new one. A peer that ended without writing a line (a
        signal from outside, a crash in start-up) is started again as it was; one that
        said why it stopped is reported. ``counted``: parts already up, for progress."""
        genesis = chain_genesis(self.root, network)
        for peer in peers:
            self.launch_peer(network, peer)
        for attempt in range(1, REBIND_ATTEMPTS + 1):
            try:
                self.wait_healthy(peers, genesis=genesis, timeout=timeout, counted=counted)
                return
            except PeerExited as exc:
                if attempt == REBIND_ATTEMPTS:
                    raise
                if rebind and PORT_IN_USE in exc.log_tail:
                    exc.peer.port = free_port(avoid=network.ports)
                    self.say(
                        f"port taken: starting the peer of {exc.peer.org} on {exc.peer.port} "
                        "instead"
                    )
                    write_directories(self.root / "peers", network.urls)
                elif exc.log_tail:
                    raise  # it said why: starting it again would fail the same way
                else:
                    # Ended before writing a line (a signal from outside, a crash in
                    # start-up): start it once more, as a service manager would, and say so.
                    self.say(f"{exc}: starting it again")
                # Never two of one peer: make sure the one that seemed to end has.
                self.processes.terminate([exc.peer.pid], timeout=5.0)
                self.launch_peer(network, exc.peer)

    def launch_peer(self, network: Network, peer: PeerProcess) -> None:
        """Start the peer process of ``peer`` (its folder ``root/peers/<org>``) in its
        own session, its output appended to ``root/logs/<org>.log``, and record its
        process id."""
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        with (logs / f"{peer.org}.log").open("ab") as log:
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [
                    sys.executable,
                    "-m",
                    "healthledger.cli.main",
                    "node",
                    "--data",
                    str(self.root / "peers" / peer.org),
                    "--port",
                    str(peer.port),
                    "--jetstream",
                    ",".join(network.servers),
                    "--demo-custody",
                    "--checkpoint-every",
                    str(network.checkpoint_every),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                # Every line reaches the log at once, and a crash in native code leaves
                # the Python stack there rather than an empty log.
                env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"},
            )
        peer.pid = self.processes.launched(proc)
        network.save(self.root)

    def wait_healthy(
        self,
        peers: Sequence[PeerProcess],
        *,
        genesis: str | None,
        timeout: float,
        counted: int = 0,
    ) -> None:
        """Wait until every peer of ``peers`` serves this network's chain and takes
        writes; PeerExited naming the log of one that exited, NetworkError naming those
        still waiting after ``timeout`` seconds. An answer from another chain on a
        peer's port (a program that took the port first) does not count: that peer
        fails to bind and is reported."""
        deadline = time.monotonic() + timeout
        waiting = list(peers)
        total = counted + len(peers)
        with NetworkClient(timeout=1.0) as client:
            while waiting:
                for peer in list(waiting):
                    if not self.alive(peer.pid):
                        log = self.root / "logs" / f"{peer.org}.log"
                        raise PeerExited(peer, log, self.processes.ended_how(peer.pid))
                    try:
                        status = client.status(peer.url)
                    except NetworkError:
                        continue
                    if genesis is not None and status.genesis_hash != genesis:
                        continue
                    # Serving queries is not enough: wait until its orderer takes writes too.
                    if not status.accepting_writes:
                        continue
                    waiting.remove(peer)
                    self._advance(total - len(waiting), total)
                    self.say(f"peer {peer.org}: {peer.url}/")
                if waiting and time.monotonic() > deadline:
                    names = ", ".join(p.org for p in waiting)
                    raise NetworkError(f"peers not healthy after {timeout:g} s: {names}")
                if waiting:
                    time.sleep(POLL_S)

    # --- down --------------------------------------------------------------------------

    def down(self, *, timeout: float = 10.0) -> int:
        """Stop every peer, then every NATS server; returns how many processes were
        stopped. Stopping a network that is already down does nothing."""
        network = Network.load(self.root)
        stopped = 0
        # Peers first, so none is left publishing to a cluster that is going away.
        for group in (network.peers, network.nats):
            stopped += self.processes.terminate([p.pid for p in group], timeout=timeout)
            for proc in group:
                proc.pid = None
            network.save(self.root)
        self.say(
            f"stopped {stopped} processes" if stopped else f"no process of {self.root} was running"
        )
        return stopped


def chain_genesis(root: Path, network: Network) -> str | None:
    """Hash of the genesis block of the network in ``root``, read from the ledger of
    the first peer that has one; None if none can be read."""
    for peer in network.peers:
        ledger = peer_ledger(root, peer.org)
        if ledger is None:
            continue
        try:
            store = open_store(ledger)
        except LedgerError:
            continue
        try:
            return store.header(0).hash
        except LedgerError:
            continue
        finally:
            store.close()
    return None
