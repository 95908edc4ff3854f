"""Endurance under crashes: load stays on while random peers and NATS servers are
killed (SIGKILL) and restarted at random, seeded intervals; then the script waits for
every peer to converge and reports, as JSON:

- ``acknowledged``: transactions whose submitter got a VALID receipt;
- ``committed``: distinct transactions on the gateway peer's chain;
- ``lost``: acknowledged transactions missing on some peer;
- ``duplicated``: extra copies of a transaction on some peer's chain;
- ``diverged``: peers whose block hash differs from the gateway's at some height.

Setup, all on 127.0.0.1: a three-server JetStream cluster (``sync_interval: always``),
one gateway peer in this process that endorses and submits (it is never killed: it plays
the client's own organisation), and ``--peers`` peer processes, each resuming after a
kill from the stream position recorded with its last block. At most one NATS server is
down at a time, so the three-replica stream keeps its quorum.

With ``--batch N`` each submitter endorses N transactions and hands them to
``Peer.submit_many`` together (their publishes in flight side by side).

Usage: python benchmarks/chaos.py --minutes M [--peers 2] [--seed 7] [--submitters 8]
[--batch 1]
(a peer process: python benchmarks/chaos.py --peer DATA URL [URL ...])
"""

from __future__ import annotations

import argparse
import json
import os
import random
import selectors
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from healthledger.cli.bench import BENCH_CLIENT, bench_node
from healthledger.cli.bench_contract import BenchContract
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.ledger.sqlite_store import SqliteStore
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.consortium_peer import jetstream_ordering
from healthledger.node.embedded import LEDGER_FILE, EmbeddedNode
from healthledger.node.errors import NodeError
from healthledger.ordering.nats_cluster import NatsCluster, NatsClusterError
from healthledger.ordering.orderer import OrderingError

STREAM = "CHAOS"
CONTRACTS = (*SYSTEM_CONTRACTS, BenchContract)
COMMIT_TIMEOUT_S = 20.0
PEER_READY_S = 60.0
CONVERGE_S = 120.0


def ordering(servers: list[str]) -> Any:
    """The JetStream orderer factory every chaos peer uses."""
    return jetstream_ordering(
        servers,
        stream=STREAM,
        subject_prefix=f"hl.{STREAM.lower()}",
        max_block_tx=100,
        batch_timeout_s=0.05,
    )


def run_peer(data: Path, servers: list[str]) -> None:
    """A peer process: resume after the recorded stream position, commit until SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    node = EmbeddedNode(data, contracts=CONTRACTS, resume_orderer=ordering(servers))
    # As `healthledger node` runs a consortium peer: a peer restarted while NATS is
    # (partly) down keeps retrying in the background instead of exiting.
    node.start(retry=True)
    print("ready", flush=True)
    stop.wait()
    node.stop()


class PeerProcess:
    """One peer process that can be killed and started again on the same folder."""

    def __init__(self, data: Path, servers: list[str]) -> None:
        self.data = data
        self.servers = servers
        self.proc: subprocess.Popen[str] | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        """True if the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start the process and wait until it reports ready."""
        log = (self.data.parent / f"{self.data.name}.log").open("a")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--peer", str(self.data), *self.servers],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        log.close()
        self.starts += 1
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            if not selector.select(PEER_READY_S):
                raise RuntimeError(f"peer {self.data.name} not ready in {PEER_READY_S} s")
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"peer {self.data.name} exited; see its log")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def height_of(data: Path) -> int:
    """Committed blocks in ``data``'s ledger, read while another process writes it."""
    db = sqlite3.connect(f"file:{data / LEDGER_FILE}?mode=ro", uri=True, timeout=5)
    try:
        row = db.execute("SELECT COALESCE(MAX(height) + 1, 0) FROM blocks").fetchone()
    finally:
        db.close()
    return int(row[0])


class Load:
    """Submitting threads on the gateway, each until ``until`` (monotonic)."""

    def __init__(
        self, gateway: EmbeddedNode, *, submitters: int, until: float, batch: int = 1
    ) -> None:
        self.gateway = gateway
        self.until = until
        self.batch = max(1, batch)
        self.acknowledged: set[str] = set()
        self.refused = 0
        self.unconfirmed = 0
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._submit, args=(i,), daemon=True) for i in range(submitters)
        ]

    def start(self) -> Load:
        """Start every submitter."""
        for thread in self._threads:
            thread.start()
        return self

    def join(self) -> None:
        """Wait for every submitter to finish its last transaction."""
        for thread in self._threads:
            thread.join(COMMIT_TIMEOUT_S + 30)

    def _submit(self, worker: int) -> None:
        peer = self.gateway.peer
        count = 0
        while time.monotonic() < self.until:
            txs = []
            try:
                for _ in range(self.batch):
                    count += 1
                    args = {"key": f"w{worker}-{count}", "value": count}
                    txs.append(
                        peer.endorse(self.gateway.propose(BENCH_CLIENT, "bench", "put", args))
                    )
                if self.batch == 1:
                    futures = [peer.submit(txs[0], precheck=False)]
                else:
                    futures = peer.submit_many(txs, precheck=False)
            except (NodeError, OrderingError):
                with self._lock:
                    self.refused += len(txs) or 1
                time.sleep(0.1)
                continue
            for tx, future in zip(txs, futures, strict=True):
                try:
                    receipt = peer.wait(future, tx.tx_id, COMMIT_TIMEOUT_S)
                except NodeError:
                    with self._lock:
                        if future.done():
                            self.refused += 1  # not taken by the orderer
                        else:
                            self.unconfirmed += 1
                    continue
                if receipt.code is ValidationCode.VALID:
                    with self._lock:
                        self.acknowledged.add(tx.tx_id)


def chain(data: Path) -> tuple[list[str], list[str]]:
    """Block hashes and transaction ids, in order, of the ledger in ``data``."""
    store = SqliteStore(data / LEDGER_FILE)
    try:
        hashes = [store.header(h).hash for h in range(store.height())]
        head = store.head()
        size = 0 if head is None else head.log_size
        return hashes, [store.tx_at_log_index(i).tx_id for i in range(size)]
    finally:
        store.close()


def chaos(
    base: Path, *, minutes: float, peers: int, seed: int, submitters: int, batch: int = 1
) -> dict[str, Any]:
    """Run the load and the faults, converge, and count."""
    rng = random.Random(seed)
    cluster = NatsCluster(base / "nats", sync_always=True).start()
    bench_node(base / "gateway").stop()
    folders = [base / f"peer{i + 1}" for i in range(peers)]
    for folder in folders:
        shutil.copytree(base / "gateway", folder)
    gateway = EmbeddedNode(
        base / "gateway", contracts=CONTRACTS, resume_orderer=ordering(cluster.urls)
    ).start()
    processes = [PeerProcess(folder, cluster.urls) for folder in folders]
    events: Counter[str] = Counter()
    try:
        for process in processes:
            process.start()
        head = gateway.peer.store.head()
        first_tx = 0 if head is None else head.log_size
        began = time.monotonic()
        until = began + 60 * minutes
        load = Load(gateway, submitters=submitters, until=until, batch=batch).start()
        targets = [f"nats{i}" for i in range(cluster.size)] + [f"peer{i}" for i in range(peers)]
        while time.monotonic() < until:
            time.sleep(min(rng.uniform(1.0, 4.0), max(0.0, until - time.monotonic())))
            if time.monotonic() >= until:
                break
            target = rng.choice(targets)
            index = int(target[4:])
            if target.startswith("nats"):
                if cluster.running(index):
                    if all(cluster.running(i) for i in range(cluster.size)):
                        cluster.kill(index)
                        events["nats_killed"] += 1
                else:
                    restart_nats(cluster, index)
                    events["nats_restarted"] += 1
            elif processes[index].running:
                processes[index].kill()
                events["peer_killed"] += 1
            else:
                processes[index].start()
                events["peer_restarted"] += 1
        for i in range(cluster.size):
            if not cluster.running(i):
                restart_nats(cluster, i)
                events["nats_restarted"] += 1
        for process in processes:
            if not process.running:
                process.start()
                events["peer_restarted"] += 1
        load.join()
        loaded = time.monotonic() - began
        converged = converge(gateway, folders)
    finally:
        for process in processes:
            process.stop()
        gateway.stop()
        cluster.stop()
    reference, committed = chain(base / "gateway")
    lost: set[str] = set()
    duplicated = 0
    diverged = 0
    heights = []
    for data in [base / "gateway", *folders]:
        hashes, tx_ids = chain(data)
        heights.append(len(hashes))
        lost |= load.acknowledged - set(tx_ids)
        duplicated += len(tx_ids) - len(set(tx_ids))
        diverged += any(a != b for a, b in zip(hashes, reference, strict=False))
    return {
        "minutes": minutes,
        "seed": seed,
        "peers": peers + 1,
        "nats_servers": cluster.size,
        "faults": dict(events),
        "acknowledged": len(load.acknowledged),
        "committed": len(set(committed[first_tx:])),
        "lost": len(lost),
        "duplicated": duplicated,
        "diverged": diverged,
        "refused": load.refused,
        "unconfirmed": load.unconfirmed,
        "converged": converged,
        "heights": heights,
        "acknowledged_tx_per_s": round(len(load.acknowledged) / loaded, 1),
    }


def restart_nats(cluster: NatsCluster, index: int) -> None:
    """Start a killed server again; a slow recovery is tolerated, not fatal."""
    try:
        cluster.restart(index, timeout=30)
    except NatsClusterError as exc:
        print(f"warning: {exc}", file=sys.stderr)


def converge(gateway: EmbeddedNode, folders: list[Path]) -> bool:
    """Wait (bounded) until every peer has the gateway's height."""
    deadline = time.monotonic() + CONVERGE_S
    while time.monotonic() < deadline:
        head = gateway.peer.store.height()
        if all(height_of(f) >= head for f in folders):
            return True
        time.sleep(0.2)
    return False


def main() -> None:
    """Parse the arguments and print the figures as JSON (the last line)."""
    if len(sys.argv) > 1 and sys.argv[1] == "--peer":
        run_peer(Path(sys.argv[2]), sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--peers", type=int, default=2, help="killable peer processes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--submitters", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1, help="transactions per submit call")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hl-chaos-") as tmp:
        figures = chaos(
            Path(tmp),
            minutes=args.minutes,
            peers=args.peers,
            seed=args.seed,
            submitters=args.submitters,
            batch=args.batch,
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
