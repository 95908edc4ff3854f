"""The peer side of ``healthledger bench network``: a peer on a copy of the benchmark
consortium, a clock of when it committed each height, the submitting of chunks of
transactions (paced or not), and the life of a peer in a process of its own, as a
consortium runs them (one peer per organisation, each its own process).

Times are ``time.perf_counter()`` readings: on Linux the system-wide monotonic clock,
so the parent compares them across processes. The conversation of a peer process with
the benchmark over ``conn`` (a ``multiprocessing`` pipe), in order:

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
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from healthledger.cli.bench_contract import BenchContract
from healthledger.contracts.runtime import ContractRuntime
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.ledger.sqlite_store import SqliteStore
from healthledger.ledger.transaction import Transaction
from healthledger.node.embedded import KEYSTORE_FILE, LEDGER_FILE
from healthledger.node.keystore import Keystore
from healthledger.node.peer import Peer, Receipt
from healthledger.node.vault import VaultSet
from healthledger.ordering.jetstream import JetStreamOrderer
from healthledger.ordering.solo import wall_clock_ms

CONTRACTS = (*SYSTEM_CONTRACTS, BenchContract)
COMMIT_TIMEOUT_S = 120.0
"""The longest a run waits for one commit, or for the next step."""
MAX_BLOCK_TX = 500
BATCH_TIMEOUT_S = 0.05

Chunk = tuple[int, list[Transaction]]
"""The i-th chunk of the run's transactions (i decides its peer and its pacing)."""


def open_bench_peer(data: Path, servers: Sequence[str]) -> Peer:
    """A peer on the benchmark consortium in ``data``, ordering through ``servers``."""
    return Peer(
        store=SqliteStore(data / LEDGER_FILE),
        runtime=ContractRuntime(CONTRACTS),
        orderer=JetStreamOrderer(
            servers=servers, max_block_tx=MAX_BLOCK_TX, batch_timeout_s=BATCH_TIMEOUT_S
        ),
        endorsers=Keystore.load(data / KEYSTORE_FILE).peers(),
        vaults=VaultSet({}),
        clock=wall_clock_ms,
    )


def chunked(txs: list[Transaction], batch: int) -> list[Chunk]:
    """``txs`` in numbered chunks of ``batch``."""
    size = max(1, batch)
    return [(i, txs[i * size : (i + 1) * size]) for i in range(math.ceil(len(txs) / size))]


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


@dataclass(frozen=True)
class Pacing:
    """How chunks are handed over."""

    batch: int
    threads: int
    """Threads handing chunks over at once."""
    rate: float | None = None
    """Paced: chunk i no sooner than ``start + i * batch / rate``; None: at once."""
    closed_loop: bool = False
    """Each thread waits for its chunk to commit before it takes the next."""


@dataclass
class Submitted:
    """What handing chunks over gave."""

    handed: dict[str, float]
    """When each transaction was handed to its peer."""
    receipts: dict[str, Receipt]
    local: list[float]
    """Seconds from hand-over to the submitting peer's commit, per transaction."""
    done_at: float
    """When the last chunk was acknowledged by the stream."""


def submit_chunks(
    peer_for: Callable[[int], Peer], chunks: Sequence[Chunk], pacing: Pacing, start: float
) -> Submitted:
    """Hand chunk i to ``peer_for(i)`` from ``pacing.threads`` threads; wait for every
    receipt."""
    handed: dict[str, float] = {}
    local: list[float] = []
    futures: list[tuple[str, Future[Receipt]]] = []
    lock = threading.Lock()

    def submit(item: Chunk) -> None:
        index, chunk = item
        if pacing.rate:
            due = start + index * max(1, pacing.batch) / pacing.rate
            time.sleep(max(0.0, due - time.perf_counter()))
        began = time.perf_counter()
        peer = peer_for(index)
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
        if pacing.closed_loop:
            for future in mine:
                future.result(COMMIT_TIMEOUT_S)

    with ThreadPoolExecutor(pacing.threads) as pool:
        list(pool.map(submit, chunks))
    done_at = time.perf_counter()
    receipts = {tx_id: future.result(COMMIT_TIMEOUT_S) for tx_id, future in futures}
    return Submitted(handed, receipts, local, done_at)


# --- a peer in a process of its own ------------------------------------------------


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
    pacing: Pacing


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
    peer = open_bench_peer(Path(job.data), job.servers)
    clock: HeightClock | None = None
    try:
        peer.start()
        _wait(lambda: peer.accepting, "the peer did not take writes in time")
        chunks = chunked(read_transactions(Path(job.txs_file)), job.pacing.batch)
        mine = [chunk for chunk in chunks if chunk[0] % job.peers == job.index]
        start_height = peer.store.height()
        clock = HeightClock(peer, start_height).start()
        conn.send(("ready", start_height))
        _, start = _receive(conn, "start signal")
        # Every peer process begins at the same moment, the one the run is timed from.
        time.sleep(max(0.0, start - time.perf_counter()))
        done = submit_chunks(lambda _i: peer, mine, job.pacing, start)
        report = {
            tx_id: [done.handed[tx_id], receipt.height, receipt.code.value]
            for tx_id, receipt in done.receipts.items()
        }
        conn.send(("submitted", report, done.local, done.done_at))
        _, final = _receive(conn, "final height")
        watched = clock
        _wait(lambda: final - 1 in watched.committed_at, f"height {final} not reached in time")
        conn.send(("committed", dict(watched.committed_at)))
    finally:
        if clock is not None:
            clock.stop()
        peer.stop()
        peer.store.close()


def _receive(conn: Connection, what: str) -> Any:
    if not conn.poll(COMMIT_TIMEOUT_S):
        raise TimeoutError(f"no {what} from the benchmark")
    return conn.recv()


def _wait(condition: Callable[[], bool], message: str) -> None:
    deadline = time.monotonic() + COMMIT_TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(message)
        time.sleep(0.005)
