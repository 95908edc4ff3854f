"""A consortium under load in a lab of network namespaces, for partitions.

Nodes ``n1``..``n3`` run the NATS servers (a ``NamespacedNatsCluster``), ``p1``..``p3``
one consortium peer process each (``tests/support/partition_peer.py``) with its own
submitters. The test (or ``benchmarks/partition.py``) cuts and mends links with
``rig.lab``; a watcher compares the peers' block hashes height by height the whole
time; at the end every peer's chain is read back from its folder.
"""

from __future__ import annotations

import os
import selectors
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from healthledger.apps.registry import installed_contracts
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.consortium_peer import found_consortium
from healthledger.ordering.nats_cluster import NatsClusterError
from tests.support.jetstream_peer import read_ledger, wait_for
from tests.support.netns import NetLab
from tests.support.netns_nats import NamespacedNatsCluster

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ["n1", "n2", "n3"]
PEERS = ["p1", "p2", "p3"]
PEER_READY_S = 90.0
STOP_S = 45.0


def chain_hashes(folder: Path) -> list[str]:
    """Block hashes of the ledger in ``folder`` (read only, while its peer writes)."""
    try:
        return read_ledger(folder)[0]
    except sqlite3.Error:
        return []  # busy or not yet made: the next look sees it


@dataclass
class Findings:
    """What the watcher and the submitters saw."""

    forks: list[str] = field(default_factory=list)
    """Heights at which two peers held different blocks, as seen while running."""
    acked: dict[str, str] = field(default_factory=dict)
    """Acknowledged transaction id -> validation code, over every peer's submitters."""
    refused: list[str] = field(default_factory=list)
    crashed: list[str] = field(default_factory=list)


class PeerProcess:
    """One peer process in its namespace; killable and restartable on its folder."""

    def __init__(self, rig: PartitionRig, node: str, folder: Path) -> None:
        self.rig = rig
        self.node = node
        self.folder = folder
        self.out = rig.base / f"out-{node}"
        self.out.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Start the process and wait until it reports ready."""
        argv = [sys.executable, "-m", "tests.support.partition_peer", str(self.folder)]
        argv += [self.rig.stream, str(self.out), *self.rig.cluster.urls]
        with (self.out / "peer.log").open("a") as log:
            self.proc = self.rig.lab.popen(
                self.node, argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True
            )
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            ready = selector.select(PEER_READY_S) and self.proc.stdout.readline().strip()
        if ready != "ready":
            raise AssertionError(f"peer {self.node} did not start; see {self.out / 'peer.log'}")

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` if the process runs."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        """SIGTERM (the peer writes its status), SIGKILL if it hangs."""
        if self.proc is None:
            return
        self.signal(signal.SIGUSR1)
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_S)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGUSR2)  # its stacks into its log, to see what hung
            time.sleep(1)
            self.proc.kill()
            self.proc.wait()

    def lines(self, kind: str) -> list[str]:
        """The lines the submitters wrote to ``kind`` so far."""
        try:
            return (self.out / kind).read_text().splitlines()
        except FileNotFoundError:
            return []


class PartitionRig:
    """The lab, the NATS cluster and the peer processes of one consortium."""

    def __init__(self, base: Path, *, stream: str) -> None:
        self.base = base
        self.stream = stream
        self.lab = NetLab([*SERVERS, *PEERS])
        self.cluster = NamespacedNatsCluster(base / "nats", self.lab, SERVERS)
        self.peers: list[PeerProcess] = []
        self.findings = Findings()
        self._watching = threading.Event()
        self._watcher: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------------

    def open(self) -> PartitionRig:
        """Make the lab, start the cluster, found the consortium and start its peers."""
        self.lab.open()
        try:
            self.cluster.start(timeout=60)
            folders = found_consortium(
                self.base / "consortium", plans=DEMO_ORGS[:3], contracts=installed_contracts()
            )
            for node, folder in zip(PEERS, folders.values(), strict=True):
                self.peers.append(PeerProcess(self, node, folder))
            for peer in self.peers:
                peer.start()
            self._watcher = threading.Thread(target=self._watch, name="fork-watch", daemon=True)
            self._watching.set()
            self._watcher.start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop the peers and the servers and delete the namespaces, whatever happened."""
        self._watching.clear()
        if self._watcher is not None:
            self._watcher.join(10)
        for peer in self.peers:
            peer.stop()
        self.cluster.stop()
        self.lab.close()

    def __enter__(self) -> PartitionRig:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- reading ------------------------------------------------------------------

    def acked(self) -> int:
        """Transactions acknowledged so far, over every peer."""
        return sum(len(p.lines("acked")) for p in self.peers)

    def heights(self) -> list[int]:
        """Each peer's committed height."""
        return [len(chain_hashes(p.folder)) for p in self.peers]

    def stream_leader(self) -> str | None:
        """The lab node of the NATS server leading the ordering stream, if known."""
        index = self.cluster.stream_leader(self.stream)
        return None if index is None else self.cluster.node_name(index)

    def server_of(self, peer: PeerProcess) -> str | None:
        """The lab node of the NATS server ``peer``'s ordering connection is on, if any."""
        name = f"peer-{peer.folder.name}"
        for index in range(self.cluster.size):
            try:
                connections = self.cluster._monitor(index, "/connz").get("connections") or []
            except (OSError, ValueError):
                continue
            if any(c.get("name") == name for c in connections):
                return self.cluster.node_name(index)
        return None

    def wait_acked(self, more: int, what: str, *, timeout: float = 60.0) -> None:
        """Wait until ``more`` transactions beyond now are acknowledged."""
        target = self.acked() + more
        wait_for(lambda: self.acked() >= target, what, timeout=timeout)

    def _watch(self) -> None:
        while self._watching.is_set():
            chains = [chain_hashes(p.folder) for p in self.peers]
            for height in range(min(len(c) for c in chains)):
                if len({c[height] for c in chains}) > 1:
                    self.findings.forks.append(f"height {height}: {[c[height] for c in chains]}")
                    break
            time.sleep(0.5)

    # --- ending ---------------------------------------------------------------------

    def drain_and_converge(self, *, timeout: float = 90.0) -> None:
        """Stop the submitters, wait for their last writes, then for every peer to hold
        the same head (unchanged for a moment)."""
        for peer in self.peers:
            peer.signal(signal.SIGUSR1)
        wait_for(
            lambda: all((p.out / "drained").exists() for p in self.peers),
            "the submitters drained",
            timeout=timeout,
        )
        last: list[list[str]] = []

        def settled() -> bool:
            chains = [chain_hashes(p.folder) for p in self.peers]
            same = all(c == chains[0] for c in chains) and len(chains[0]) > 1
            steady = same and chains == last
            last[:] = chains
            if not steady:
                time.sleep(0.5)
            return steady

        wait_for(settled, "every peer at one head", timeout=timeout)

    def collect(self) -> Findings:
        """What the submitters recorded (call after ``drain_and_converge``)."""
        for peer in self.peers:
            for line in peer.lines("acked"):
                tx_id, code = line.split()
                self.findings.acked[tx_id] = code
            self.findings.refused += peer.lines("refused")
            self.findings.crashed += peer.lines("crashed")
        return self.findings


def restart_server(rig: PartitionRig, index: int) -> None:
    """Start a stopped server again; a slow recovery is reported, not fatal."""
    try:
        rig.cluster.restart(index, timeout=30)
    except NatsClusterError as exc:
        print(f"warning: {exc}", file=sys.stderr)


def hold(seconds: float, *, every: float = 0.5, check: Callable[[], None] | None = None) -> None:
    """Let ``seconds`` pass (bounded), calling ``check`` every ``every`` seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check is not None:
            check()
        time.sleep(min(every, max(0.0, deadline - time.monotonic())))
