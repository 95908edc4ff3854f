"""One peer of ``healthledger bench network`` in a process of its own, as a consortium
runs them (one peer per organisation, each its own process): it opens its copy of the
benchmark consortium, orders through the NATS cluster, submits its share of the
transactions when told to start, and reports when each transaction was handed over and
when each block was committed here.

Times are ``time.perf_counter()`` readings: on Linux the system-wide monotonic clock,
so the parent compares them across processes. The conversation over ``conn`` (a
``multiprocessing`` pipe), in order:

    child  -> ("ready", start_height)
    parent -> ("go", start_time)
    child  -> ("submitted", {tx_id: [handed_over, height, code]}, local_latencies, done_at)
    parent -> ("until", final_height)
    child  -> ("committed", {height: committed_at})

and ``("failed", message)`` from the child in place of any of its messages.
"""

from __future__ import annotations

import json
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from healthledger.ledger.transaction import Transaction
from healthledger.node.peer import Peer, Receipt

COMMIT_TIMEOUT_S = 120.0
"""The longest the peer waits for one commit, or for the start signal."""


@dataclass(frozen=True)
class PeerJob:
    """What one peer process does."""

    data: str
    """Its data folder (a copy of the benchmark consortium)."""
    servers: list[str]
    """NATS URLs."""
    txs_file: str
    """Every endorsed transaction, one canonical JSON object per line."""
    index: int
    """Which peer this is: it submits chunk i when ``i % peers == index``."""
    peers: int
    batch: int
    threads: int
    """Threads submitting at once in this process."""
    rate: float | None
    """Paced: chunk i no sooner than ``start + i * batch / rate``."""
    closed_loop: bool


def read_transactions(path: Path) -> list[Transaction]:
    """The transactions of a file of canonical JSON lines."""
    with path.open("rb") as lines:
        return [Transaction.from_json(json.loads(line)) for line in lines if line.strip()]


def write_transactions(path: Path, txs: list[Transaction]) -> None:
    """Write ``txs`` one canonical JSON object per line."""
    with path.open("wb") as out:
        for tx in txs:
            out.write(tx.canonical + b"\n")


def run(conn: Connection, job: PeerJob) -> None:
    """The process's whole life (the target of ``multiprocessing``)."""
    try:
        _run(conn, job)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the run
        conn.send(("failed", f"peer {job.index}: {type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _run(conn: Connection, job: PeerJob) -> None:
    # Imported here: the parent module imports this one.
    from healthledger.cli.bench_network import HeightClock, open_bench_peer

    peer = open_bench_peer(Path(job.data), job.servers, max_block_tx=500, batch_timeout_s=0.05)
    clock: HeightClock | None = None
    try:
        peer.start()
        _wait(lambda: peer.accepting, "the peer did not take writes in time")
        txs = read_transactions(Path(job.txs_file))
        size = max(1, job.batch)
        chunks = [(i, txs[i * size : (i + 1) * size]) for i in range(math.ceil(len(txs) / size))]
        mine = [chunk for chunk in chunks if chunk[0] % job.peers == job.index]
        start_height = peer.store.height()
        clock = HeightClock(peer, start_height).start()
        conn.send(("ready", start_height))
        if not conn.poll(COMMIT_TIMEOUT_S):
            raise TimeoutError("no start signal")
        _, start = conn.recv()
        handed, local, done_at = _submit(peer, mine, job, start)
        conn.send(("submitted", handed, local, done_at))
        if not conn.poll(COMMIT_TIMEOUT_S):
            raise TimeoutError("no final height")
        _, final = conn.recv()
        watched = clock
        _wait(lambda: final - 1 in watched.committed_at, f"height {final} not reached in time")
        conn.send(("committed", dict(watched.committed_at)))
    finally:
        if clock is not None:
            clock.stop()
        peer.stop()
        peer.store.close()


def _submit(
    peer: Peer, chunks: list[tuple[int, list[Transaction]]], job: PeerJob, start: float
) -> tuple[dict[str, list[Any]], list[float], float]:
    """Hand ``chunks`` to ``peer`` from ``job.threads`` threads; wait for every receipt."""
    handed: dict[str, float] = {}
    local: list[float] = []
    futures: list[tuple[str, Future[Receipt]]] = []
    lock = threading.Lock()

    def submit(item: tuple[int, list[Transaction]]) -> None:
        index, chunk = item
        if job.rate:
            time.sleep(max(0.0, start + index * max(1, job.batch) / job.rate - time.perf_counter()))
        began = time.perf_counter()
        if len(chunk) == 1:
            mine = [peer.submit(chunk[0], precheck=False)]
        else:
            mine = peer.submit_many(chunk, precheck=False)
        with lock:
            for tx, future in zip(chunk, mine, strict=True):
                handed[tx.tx_id] = began
                futures.append((tx.tx_id, future))
        for future in mine:
            future.add_done_callback(lambda _: local.append(time.perf_counter() - began))
        if job.closed_loop:
            for future in mine:
                future.result(COMMIT_TIMEOUT_S)

    with ThreadPoolExecutor(job.threads) as pool:
        list(pool.map(submit, chunks))
    done_at = time.perf_counter()
    report: dict[str, list[Any]] = {}
    for tx_id, future in futures:
        receipt = future.result(COMMIT_TIMEOUT_S)
        report[tx_id] = [handed[tx_id], receipt.height, receipt.code.value]
    return report, local, done_at


def _wait(condition: Any, message: str) -> None:
    deadline = time.monotonic() + COMMIT_TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(message)
        time.sleep(0.005)
