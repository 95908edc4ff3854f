"""End-to-end throughput of a local consortium: a three-server NATS JetStream cluster
(``sync_interval: always``) and several peers on this machine.

Shared by ``healthledger bench network`` and ``benchmarks/jetstream_commit.py``. Each peer
works on its own copy of one benchmark consortium and commits every block of the stream;
endorsed transactions are submitted through the peers in turn from a pool of threads,
by default 50 at a time with ``Peer.submit_many`` (their publishes in flight together).
A transaction counts as committed when every peer has committed its block.
"""

from __future__ import annotations

import math
import multiprocessing
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from healthledger.cli.bench import bench_node, endorse_puts
from healthledger.cli.bench_contract import BenchContract
from healthledger.cli.bench_network_peer import PeerJob, write_transactions
from healthledger.cli.bench_network_peer import run as run_peer
from healthledger.contracts.runtime import ContractRuntime
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.ledger.sqlite_store import SqliteStore
from healthledger.ledger.store import LedgerStore
from healthledger.ledger.transaction import Transaction, ValidationCode
from healthledger.node.embedded import KEYSTORE_FILE, LEDGER_FILE
from healthledger.node.keystore import Keystore
from healthledger.node.peer import Peer, Receipt
from healthledger.node.vault import VaultSet
from healthledger.ordering.jetstream import JetStreamOrderer
from healthledger.ordering.nats_cluster import NatsCluster
from healthledger.ordering.solo import wall_clock_ms

CONTRACTS = (*SYSTEM_CONTRACTS, BenchContract)
SUBMITTERS = 32
"""Threads submitting at once."""
BATCH = 50
"""Transactions one ``Peer.submit_many`` call takes (their acks awaited side by side)."""
BATCH_SUBMITTERS = 8
"""Threads submitting batches at once: ``BATCH_SUBMITTERS * BATCH`` in flight at most."""
COMMIT_TIMEOUT_S = 120.0
"""The longest a run waits for one commit before it gives up."""


class BenchmarkFailed(Exception):
    """A benchmark run did not commit every transaction on every peer in time."""


@dataclass(frozen=True)
class NetworkFigures:
    """The figures of one run."""

    transactions: int
    """Transactions submitted (all endorsed before the clock starts)."""
    peers: int
    """Peers that each committed every block."""
    nats_servers: int
    """Members of the JetStream cluster."""
    sync_interval: str
    """JetStream's fsync policy: ``always`` (fsync before ack) or ``default``."""
    load: str
    """Open loop (submit as fast as acks come) or closed loop (wait for each commit)."""
    batch: int
    """Transactions per submit call (1: ``Peer.submit``; more: ``Peer.submit_many``)."""
    submitters: int
    """Threads submitting at once."""
    blocks: int
    """Blocks the run added to each chain."""
    seconds: float
    """First submit to the last commit on the last peer."""
    tx_per_s: float
    """Transactions committed on every peer per second."""
    published_tx_per_s: float
    """Transactions acknowledged by the stream per second."""
    p50_ms: float
    """Median latency from submit to commit on every peer."""
    p99_ms: float
    """99th-percentile latency from submit to commit on every peer."""
    local_p50_ms: float
    """Median latency from submit to commit on the submitting peer alone."""
    invalid: int
    """Transactions committed with a code other than VALID."""
    identical: bool
    """True if every peer holds the same block hash at every height."""
    offered_tx_per_s: float | None = None
    """Paced open loop: the submit rate offered (None: everything at once)."""
    peer_processes: bool = False
    """True if every peer ran in a process of its own (as deployed); False if all
    shared the benchmark's process (and its interpreter lock)."""

    def to_json(self) -> dict[str, Any]:
        """The figures as a JSON object."""
        return asdict(self)


class HeightClock:
    """When each block height was committed on one peer (a waiting thread records it)."""

    def __init__(self, peer: Peer, first: int) -> None:
        self._peer = peer
        self._next = first
        self.committed_at: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> HeightClock:
        """Begin recording."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop recording."""
        self._stop.set()
        self._thread.join(5)

    def _watch(self) -> None:
        while not self._stop.is_set():
            if not self._peer.events.wait_for_height(self._next, 0.2):
                continue
            now = time.perf_counter()
            for height in range(self._next, self._peer.store.height()):
                self.committed_at[height] = now
            self._next = max(self._next, self._peer.store.height())


def open_bench_peer(data: Path, servers: Sequence[str], **orderer: Any) -> Peer:
    """A peer on the benchmark consortium in ``data``, ordering through ``servers``."""
    return Peer(
        store=SqliteStore(data / LEDGER_FILE),
        runtime=ContractRuntime(CONTRACTS),
        orderer=JetStreamOrderer(servers=servers, **orderer),
        endorsers=Keystore.load(data / KEYSTORE_FILE).peers(),
        vaults=VaultSet({}),
        clock=wall_clock_ms,
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


def measure(
    base: Path,
    template: Path,
    txs: list[Transaction],
    *,
    peers: int,
    sync_always: bool = True,
    closed_loop: bool = False,
    batch: int = BATCH,
    submitters: int | None = None,
    rate: float | None = None,
) -> NetworkFigures:
    """One measured run on a fresh three-server cluster and fresh copies of ``template``;
    each of ``submitters`` threads (default: 32 one at a time, 8 for batches) hands
    ``batch`` transactions at a time to its peer. With ``rate``, chunk i is handed over
    no sooner than ``i * batch / rate`` seconds after the start (a paced open loop:
    latency at a sustained load rather than the queue of a burst)."""
    threads = submitters or (SUBMITTERS if batch <= 1 else BATCH_SUBMITTERS)
    label = ("always" if sync_always else "default") + ("-closed" if closed_loop else "-open")
    cluster = NatsCluster(base / f"nats-{label}", sync_always=sync_always).start()
    nodes: list[Peer] = []
    clocks: list[HeightClock] = []
    try:
        for i in range(peers):
            data = base / f"peer-{label}-{i}"
            shutil.copytree(template, data)
            nodes.append(
                open_bench_peer(data, cluster.urls, max_block_tx=500, batch_timeout_s=0.05)
            )
        for node in nodes:
            node.start()
        start_height = nodes[0].store.height()
        clocks = [HeightClock(node, start_height).start() for node in nodes]
        submitted: dict[str, float] = {}
        local: list[float] = []
        futures: list[Future[Receipt]] = []
        lock = threading.Lock()

        def submit(item: tuple[int, list[Transaction]]) -> None:
            index, chunk = item
            if rate:
                time.sleep(max(0.0, start + index * max(1, batch) / rate - time.perf_counter()))
            began = time.perf_counter()
            peer = nodes[index % peers]
            if len(chunk) == 1:
                mine = [peer.submit(chunk[0], precheck=False)]
            else:
                mine = peer.submit_many(chunk, precheck=False)
            with lock:
                for tx, future in zip(chunk, mine, strict=True):
                    submitted[tx.tx_id] = began
                    futures.append(future)
            for future in mine:
                future.add_done_callback(lambda _: local.append(time.perf_counter() - began))
            if closed_loop:
                for future in mine:
                    future.result(COMMIT_TIMEOUT_S)

        chunks = [txs[i : i + batch] for i in range(0, len(txs), max(1, batch))]
        began = start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(submit, enumerate(chunks)))
        published = time.perf_counter() - began
        receipts = [f.result(COMMIT_TIMEOUT_S) for f in futures]
        final = max(n.store.height() for n in nodes)
        deadline = time.monotonic() + COMMIT_TIMEOUT_S
        while any(final - 1 not in c.committed_at for c in clocks):
            if time.monotonic() > deadline:
                raise BenchmarkFailed(f"not every peer reached height {final} in time")
            time.sleep(0.005)
        everywhere = [max(c.committed_at[r.height] for c in clocks) for r in receipts]
        elapsed = max(everywhere) - began
        latencies = [t - submitted[r.tx_id] for t, r in zip(everywhere, receipts, strict=True)]
        return NetworkFigures(
            transactions=len(txs),
            peers=peers,
            nats_servers=cluster.size,
            sync_interval="always" if sync_always else "default",
            load=f"closed loop, {threads} submitters"
            if closed_loop
            else f"paced open loop, {rate:g} tx/s offered"
            if rate
            else "open loop",
            batch=max(1, batch),
            submitters=threads,
            blocks=final - start_height,
            seconds=round(elapsed, 3),
            tx_per_s=round(len(txs) / elapsed, 1),
            published_tx_per_s=round(len(txs) / published, 1),
            p50_ms=round(1000 * statistics.median(latencies), 1),
            p99_ms=round(1000 * _percentile(latencies, 0.99), 1),
            local_p50_ms=round(1000 * statistics.median(local), 1),
            invalid=sum(r.code is not ValidationCode.VALID for r in receipts),
            identical=identical_chains([n.store for n in nodes]),
            offered_tx_per_s=rate or None,
        )
    finally:
        for clock in clocks:
            clock.stop()
        for node in nodes:
            node.stop()
            node.store.close()
        cluster.stop()


def measure_in_processes(
    base: Path,
    template: Path,
    txs: list[Transaction],
    *,
    peers: int,
    sync_always: bool = True,
    batch: int = BATCH,
    submitters: int | None = None,
    rate: float | None = None,
) -> NetworkFigures:
    """As :func:`measure`, with every peer in a process of its own (as a consortium runs
    them) submitting its share of the chunks: chunk i goes to peer ``i % peers``, as
    there. The same ``submitters`` threads in all, shared out among the processes."""
    threads = submitters or (SUBMITTERS if batch <= 1 else BATCH_SUBMITTERS)
    label = ("always" if sync_always else "default") + "-processes"
    txs_file = base / f"txs-{label}.jsonl"
    write_transactions(txs_file, txs)
    cluster = NatsCluster(base / f"nats-{label}", sync_always=sync_always).start()
    spawn = multiprocessing.get_context("spawn")
    links: list[Connection] = []
    processes: list[BaseProcess] = []
    folders: list[Path] = []
    try:
        for i in range(peers):
            folders.append(base / f"peer-{label}-{i}")
            shutil.copytree(template, folders[-1])
            ours, theirs = spawn.Pipe()
            job = PeerJob(
                data=str(folders[-1]),
                servers=cluster.urls,
                txs_file=str(txs_file),
                index=i,
                peers=peers,
                batch=batch,
                threads=max(1, math.ceil(threads / peers)),
                rate=rate,
                closed_loop=False,
            )
            child = spawn.Process(target=run_peer, args=(theirs, job), daemon=True)
            child.start()
            theirs.close()
            links.append(ours)
            processes.append(child)
        start_height = min(peer_answer(link, "ready")[0] for link in links)
        start = time.perf_counter() + 0.05
        for link in links:
            link.send(("go", start))
        reports = [peer_answer(link, "submitted") for link in links]
        handed: dict[str, list[Any]] = {}
        for report in reports:
            handed.update(report[0])
        final = max(height for _, height, _ in handed.values()) + 1
        for link in links:
            link.send(("until", final))
        clocks = [peer_answer(link, "committed")[0] for link in links]
        for process in processes:
            process.join(COMMIT_TIMEOUT_S)
        everywhere = {
            tx_id: max(clock[height] for clock in clocks)
            for tx_id, (_, height, _) in handed.items()
        }
        elapsed = max(everywhere.values()) - start
        latencies = [everywhere[tx_id] - began for tx_id, (began, _, _) in handed.items()]
        local = [value for report in reports for value in report[1]]
        published = max(report[2] for report in reports) - start
        stores = [SqliteStore(folder / LEDGER_FILE) for folder in folders]
        try:
            identical = identical_chains(stores)
        finally:
            for store in stores:
                store.close()
        return NetworkFigures(
            transactions=len(txs),
            peers=peers,
            nats_servers=cluster.size,
            sync_interval="always" if sync_always else "default",
            load=f"paced open loop, {rate:g} tx/s offered" if rate else "open loop",
            batch=max(1, batch),
            submitters=threads,
            blocks=final - start_height,
            seconds=round(elapsed, 3),
            tx_per_s=round(len(txs) / elapsed, 1),
            published_tx_per_s=round(len(txs) / published, 1),
            p50_ms=round(1000 * statistics.median(latencies), 1),
            p99_ms=round(1000 * _percentile(latencies, 0.99), 1),
            local_p50_ms=round(1000 * statistics.median(local), 1),
            invalid=sum(code != ValidationCode.VALID.value for _, _, code in handed.values()),
            identical=identical,
            offered_tx_per_s=rate or None,
            peer_processes=True,
        )
    finally:
        for link in links:
            link.close()
        for process in processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)
        cluster.stop()


def peer_answer(link: Connection, expected: str) -> list[Any]:
    """The next message of a peer process, which must be ``expected``; its contents."""
    if not link.poll(COMMIT_TIMEOUT_S):
        raise BenchmarkFailed(f"a peer process sent no {expected!r} in time")
    try:
        kind, *contents = link.recv()
    except EOFError as exc:
        raise BenchmarkFailed(f"a peer process ended before {expected!r}") from exc
    if kind == "failed":
        raise BenchmarkFailed(str(contents[0]))
    if kind != expected:
        raise BenchmarkFailed(f"a peer process sent {kind!r}, not {expected!r}")
    return list(contents)


def identical_chains(stores: Sequence[LedgerStore]) -> bool:
    """True if every store has the same height and the same block hash at each height."""
    heights = {s.height() for s in stores}
    if len(heights) != 1:
        return False
    return all(len({s.header(h).hash for s in stores}) == 1 for h in range(heights.pop()))


def network_benchmark(
    tx: int,
    *,
    peers: int = 3,
    status: Callable[[str], None] | None = None,
    batch: int = BATCH,
    rate: float | None = None,
    in_process: bool = False,
) -> NetworkFigures:
    """``healthledger bench network``: one open-loop run (paced at ``rate`` tx/s if
    given), fsync before every ack, ``batch`` transactions per submit call; each peer in
    a process of its own unless ``in_process``."""
    say = status or (lambda _: None)
    with tempfile.TemporaryDirectory(prefix="hl-bench-network-") as tmp:
        base = Path(tmp)
        say("creating the benchmark consortium")
        node = bench_node(base / "template")
        try:
            say(f"endorsing {tx:,} transactions")
            txs = endorse_puts(node, tx)
        finally:
            node.stop()
        where = "in this process" if in_process else "each in its own process"
        say(f"committing through 3 NATS servers and {peers} peers, {where}")
        run = measure if in_process else measure_in_processes
        return run(base, base / "template", txs, peers=peers, batch=batch, rate=rate)
