"""End-to-end throughput of a local consortium: a three-server NATS JetStream cluster
(``sync_interval: always``) and several peers on this machine.

Shared by ``healthledger bench network`` and ``benchmarks/jetstream_commit.py``. Each peer
works on its own copy of one benchmark consortium and commits every block of the stream,
in a process of its own as a consortium runs it (``measure_in_processes``, the command's
default) or all in this process (``measure``: they share one interpreter lock);
endorsed transactions are submitted through the peers in turn from a pool of threads,
by default 50 at a time with ``Peer.submit_many`` (their publishes in flight together).
A transaction counts as committed when every peer has committed its block.
"""

from __future__ import annotations

import multiprocessing
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from healthledger.cli.bench import bench_node, endorse_puts
from healthledger.cli.bench_network_peer import (
    COMMIT_TIMEOUT_S,
    HeightClock,
    Pacing,
    PeerJob,
    chunked,
    open_bench_peer,
    submit_chunks,
    write_transactions,
)
from healthledger.cli.bench_network_peer import run as run_peer
from healthledger.cli.reporting import BenchmarkFailed
from healthledger.ledger.sqlite_store import SqliteStore
from healthledger.ledger.store import LedgerStore
from healthledger.ledger.transaction import Transaction, ValidationCode
from healthledger.node.embedded import LEDGER_FILE
from healthledger.node.peer import Peer
from healthledger.ordering.nats_cluster import NatsCluster

SUBMITTERS = 32
"""Threads submitting at once."""
BATCH = 50
"""Transactions one ``Peer.submit_many`` call takes (their acks awaited side by side)."""
BATCH_SUBMITTERS = 8
"""Threads submitting batches at once: ``BATCH_SUBMITTERS * BATCH`` in flight at most."""


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


@dataclass(frozen=True)
class Run:
    """What a run was: its set-up and load, for the figures."""

    transactions: int
    peers: int
    sync_always: bool
    load: str
    pacing: Pacing
    processes: bool


@dataclass(frozen=True)
class Timings:
    """What a run measured, every time a ``perf_counter`` reading."""

    start: float
    handed: dict[str, float]
    """When each transaction was handed to its peer."""
    everywhere: dict[str, float]
    """When each transaction's block was committed on the last peer."""
    local: list[float]
    done_at: float
    codes: list[str]
    blocks: int


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


def _figures(run: Run, timings: Timings, *, nats_servers: int, identical: bool) -> NetworkFigures:
    elapsed = max(timings.everywhere.values()) - timings.start
    latencies = [timings.everywhere[t] - began for t, began in timings.handed.items()]
    return NetworkFigures(
        transactions=run.transactions,
        peers=run.peers,
        nats_servers=nats_servers,
        sync_interval="always" if run.sync_always else "default",
        load=run.load,
        batch=max(1, run.pacing.batch),
        submitters=run.pacing.threads,
        blocks=timings.blocks,
        seconds=round(elapsed, 3),
        tx_per_s=round(run.transactions / elapsed, 1),
        published_tx_per_s=round(run.transactions / (timings.done_at - timings.start), 1),
        p50_ms=round(1000 * statistics.median(latencies), 1),
        p99_ms=round(1000 * _percentile(latencies, 0.99), 1),
        local_p50_ms=round(1000 * statistics.median(timings.local), 1),
        invalid=sum(code != ValidationCode.VALID.value for code in timings.codes),
        identical=identical,
        offered_tx_per_s=run.pacing.rate or None,
        peer_processes=run.processes,
    )


def _load(closed_loop: bool, rate: float | None, threads: int) -> str:
    if closed_loop:
        return f"closed loop, {threads} submitters"
    return f"paced open loop, {rate:g} tx/s offered" if rate else "open loop"


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
    """One measured run on a fresh three-server cluster and fresh copies of ``template``,
    every peer in this process; each of ``submitters`` threads (default: 32 one at a
    time, 8 for batches) hands ``batch`` transactions at a time to peer ``i % peers``.
    With ``rate``, chunk i is handed over no sooner than ``i * batch / rate`` seconds
    after the start (a paced open loop: latency at a sustained load rather than the
    queue of a burst)."""
    threads = submitters or (SUBMITTERS if batch <= 1 else BATCH_SUBMITTERS)
    pacing = Pacing(batch=batch, threads=threads, rate=rate, closed_loop=closed_loop)
    label = ("always" if sync_always else "default") + ("-closed" if closed_loop else "-open")
    cluster = NatsCluster(base / f"nats-{label}", sync_always=sync_always).start()
    nodes: list[Peer] = []
    clocks: list[HeightClock] = []
    try:
        for i in range(peers):
            data = base / f"peer-{label}-{i}"
            shutil.copytree(template, data)
            nodes.append(open_bench_peer(data, cluster.urls))
        for node in nodes:
            node.start()
        start_height = nodes[0].store.height()
        clocks = [HeightClock(node, start_height).start() for node in nodes]
        start = time.perf_counter()
        done = submit_chunks(lambda i: nodes[i % peers], chunked(txs, batch), pacing, start)
        final = max(n.store.height() for n in nodes)
        deadline = time.monotonic() + COMMIT_TIMEOUT_S
        while any(final - 1 not in c.committed_at for c in clocks):
            if time.monotonic() > deadline:
                raise BenchmarkFailed(f"not every peer reached height {final} in time")
            time.sleep(0.005)
        timings = Timings(
            start=start,
            handed=done.handed,
            everywhere={
                tx_id: max(c.committed_at[r.height] for c in clocks)
                for tx_id, r in done.receipts.items()
            },
            local=done.local,
            done_at=done.done_at,
            codes=[r.code.value for r in done.receipts.values()],
            blocks=final - start_height,
        )
        run = Run(len(txs), peers, sync_always, _load(closed_loop, rate, threads), pacing, False)
        identical = identical_chains([n.store for n in nodes])
        return _figures(run, timings, nats_servers=cluster.size, identical=identical)
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
    """As :func:`measure` (open loop), with every peer in a process of its own (as a
    consortium runs them) handing over its share of the chunks: chunk i goes to peer
    ``i % peers``, as there. The ``submitters`` threads are shared out among them."""
    threads = submitters or (SUBMITTERS if batch <= 1 else BATCH_SUBMITTERS)
    per_peer = Pacing(batch=batch, threads=max(1, -(-threads // peers)), rate=rate)
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
            job = PeerJob(str(folders[-1]), cluster.urls, str(txs_file), i, peers, per_peer)
            child = spawn.Process(target=run_peer, args=(theirs, job), daemon=True)
            child.start()
            theirs.close()
            links.append(ours)
            processes.append(child)
        start_height = min(process_answer(link, "ready")[0] for link in links)
        start = time.perf_counter() + 0.05
        for link in links:
            link.send(("go", start))
        reports = [process_answer(link, "submitted") for link in links]
        handed: dict[str, list[Any]] = {}
        for report in reports:
            handed.update(report[0])
        final = max(height for _, height, _ in handed.values()) + 1
        for link in links:
            link.send(("until", final))
        clocks = [process_answer(link, "committed")[0] for link in links]
        for process in processes:
            process.join(COMMIT_TIMEOUT_S)
        timings = Timings(
            start=start,
            handed={tx_id: began for tx_id, (began, _, _) in handed.items()},
            everywhere={
                tx_id: max(clock[height] for clock in clocks)
                for tx_id, (_, height, _) in handed.items()
            },
            local=[value for report in reports for value in report[1]],
            done_at=max(report[2] for report in reports),
            codes=[code for _, _, code in handed.values()],
            blocks=final - start_height,
        )
        stores = [SqliteStore(folder / LEDGER_FILE) for folder in folders]
        try:
            identical = identical_chains(stores)
        finally:
            for store in stores:
                store.close()
        run = Run(len(txs), peers, sync_always, _load(False, rate, threads), per_peer, True)
        figures = _figures(run, timings, nats_servers=cluster.size, identical=identical)
        return replace(figures, submitters=threads)
    finally:
        for link in links:
            link.close()
        for process in processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)
        cluster.stop()


def process_answer(
    link: Connection,
    expected: str,
    *,
    sender: str = "a peer process",
    timeout: float = COMMIT_TIMEOUT_S,
) -> list[Any]:
    """The next message of a child process (``sender``), which must be ``expected``;
    its contents. A ``failed`` message, an early end or silence past ``timeout``
    raises ``BenchmarkFailed``."""
    if not link.poll(timeout):
        raise BenchmarkFailed(f"{sender} sent no {expected!r} in time")
    try:
        kind, *contents = link.recv()
    except EOFError as exc:
        raise BenchmarkFailed(f"{sender} ended before {expected!r}") from exc
    if kind == "failed":
        raise BenchmarkFailed(str(contents[0]))
    if kind != expected:
        raise BenchmarkFailed(f"{sender} sent {kind!r}, not {expected!r}")
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
