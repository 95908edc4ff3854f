"""``healthledger bench e2e``: the embedded node end to end, every step inside the clock.

A command of its own rather than a flag of ``bench commit``: that one times a
ledger's intake of transactions endorsed beforehand, this one a client's whole
write, and the two have different ceilings and a latency figure ``commit`` has not.

On a temporary one-organisation consortium (``bench.put``, one peer endorsement):

1. **open loop**: ``clients`` client threads *in the benchmark's process* each sign
   their proposals with the client identity's key and hand them to the node
   (``Peer.endorse``: the proposal's signature checked once, the contract run, the
   endorsement signed; then ``Peer.submit`` without a dry run, as ``invoke`` does),
   never waiting for a commit before sending the next; the solo orderer cuts blocks,
   the peer validates them (creator's signature found among those it already checked,
   the endorsement verified) and commits each durably (SQLite WAL, the node's
   ``synchronous`` level, FULL by default). Timed from the first client signature to
   the last commit.
2. **one client, one write at a time**: sign, endorse, submit, wait for the receipt,
   then the next; p50 and p99 of that wait, beside this disk's fsync rate (each block
   commits with at least one fsync: the floor of that latency).

The **signature ceiling** of the path is the transactions per second this machine
could do if signature work were all there is: per transaction two Ed25519 signatures
(the client's, the endorsement) and two verifications (the proposal once, the
endorsement at validation), at the sign and verify rates measured on every core in
the same run, just before and after the open-loop phase and averaged. The peer's own
count of the verifications it made is printed beside it, so a second check of the
same proposal would show.

On a machine others share, wall-clock rates move with their load; the CPU figures
move less: ``cpu_us_per_tx`` is this process's CPU (every thread) per transaction of
the open-loop phase, ``signature_cpu_us_per_tx`` the CPU the path's signatures take
(sign and verify CPU per operation, measured in the same workers), and their quotient
``signature_share_of_cpu`` is what the wall-clock ratio would be if the node had every
core to itself and used them all.

What the profile showed (cProfile per thread with a CPU-time clock, and the pieces
timed alone; 2026-12-07, 2 shared cores at load 10-19, so CPU figures, not wall):

* per transaction about 640 us of CPU, of which the signatures 300-340 us (client
  sign ~40, proposal verify ~130, endorsement sign ~40, endorsement verify ~130):
  the ratio the node's CPU allows is about 0.48, and the wall-clock ratio follows
  it (0.49-0.60 across runs). The proposal's signature is verified once per peer
  (the precheck and the block find it among the checks already made,
  ``crypto.keys.VerifiedSignatures``), and since the peer no longer verifies the
  endorsement it made itself, ``peer_verifies_per_tx`` is 1.0 and the ceiling counts
  one verification a transaction (it counted two when this profile was taken).
* endorsement, besides its two signature operations, ~100 us: the duplicate check
  (an SQLite read, ~20 us), the transaction id and the response's canonical bytes
  (~30 us of JSON), the contract run (~30 us), the rest small. Validation and commit
  of a block of ~100: ~70 us a transaction besides the endorsement's verification.
  Threads, futures and the queue between them: ~75 us more than the same work done
  serially in one thread.
* removed: the endorsers' identities, contract definition and key-policy flag re-read
  after every block (the peer's HeightMemo now carries them over a block that did not
  write their namespace: ~1-2 ms a block under load); the endorsers re-chosen by an
  exhaustive policy search for every proposal; two labelled metric lookups a
  transaction; the proposal encoded twice. A cut each time the queue emptied made
  blocks of ~6 transactions under load (~70-100 us more CPU a transaction), so only
  a lone submission is cut at once.
* one client, one write at a time: the floor is the commit's fsync (1.4-5 ms here,
  ``fsync_ms``); before, the orderer's 2 ms idle timer came on top of it, now a lone
  write is cut at once (p50 ~14 -> ~8 ms at load 15, interleaved).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from healthledger.appkit.disk import fsync_per_s
from healthledger.cli.bench import (
    BENCH_CLIENT,
    ThroughputFigures,
    bench_node,
    durable_commit,
    peak_rss,
    store_kind,
)
from healthledger.cli.reporting import BenchmarkFailed
from healthledger.crypto.keys import SigningKey, verify_signature
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.errors import NodeError
from healthledger.node.peer import Receipt
from healthledger.ordering.solo import IDLE_TIMEOUT_S, SoloOrderer

SIGNS_PER_TX = 2
"""Signatures made per transaction: the client's over its proposal, the endorser's."""
VERIFIES_PER_TX = 1
"""Verifications per transaction on the peer: the proposal's, once. The endorsement is
the peer's own, made in this process, and not verified again
(``crypto.keys.VerifiedSignatures.made``); the offline audit verifies it."""


@dataclass(frozen=True)
class SignatureRates:
    """Ed25519 operations per second of this machine, every core busy, and the CPU
    time one operation takes."""

    sign_per_s: float
    verify_per_s: float
    sign_cpu_us: float = 0.0
    verify_cpu_us: float = 0.0

    def cpu_us_per_tx(self) -> float:
        """CPU microseconds of one transaction's signature work."""
        return SIGNS_PER_TX * self.sign_cpu_us + VERIFIES_PER_TX * self.verify_cpu_us

    def ceiling(self) -> float:
        """Transactions per second if the path's signature work were all there is."""
        return 1.0 / (SIGNS_PER_TX / self.sign_per_s + VERIFIES_PER_TX / self.verify_per_s)


@dataclass(frozen=True, kw_only=True)
class E2EFigures(ThroughputFigures):
    """Outcome of ``bench e2e``; ``seconds`` runs from the first client signature to
    the last commit."""

    clients: int
    verifications: int
    """Ed25519 verifications the peer made during the open-loop phase."""
    cpu_seconds: float
    """CPU time of this process (every thread) during the open-loop phase."""
    rates: SignatureRates
    latency_ms: tuple[float, ...]
    """Sign-to-receipt time of each sequential write."""
    latency_blocks: int
    idle_timeout_ms: float
    synchronous: str
    fsync_per_s: float

    def to_json(self) -> dict[str, Any]:
        """The JSON form (the figures ``bench e2e --json`` prints)."""
        ceiling = self.rates.ceiling()
        latencies = sorted(self.latency_ms)
        cpu_us = self.cpu_seconds / self.transactions * 1e6
        return {
            "benchmark": "e2e",
            "mode": f"embedded, end to end in the clock: {self.clients} client thread(s) in "
            "this process sign, the node checks, executes, endorses, orders (solo), "
            f"validates and commits durably ({durable_commit(self.store, self.synchronous)})",
            "store": store_kind(self.store),
            "transactions": self.transactions,
            "clients": self.clients,
            "seconds": round(self.seconds, 3),
            "tx_per_s": round(self.tx_per_s, 1),
            "blocks": self.blocks,
            "invalid": self.invalid,
            "sign_per_s": round(self.rates.sign_per_s, 1),
            "verify_per_s": round(self.rates.verify_per_s, 1),
            "signs_per_tx": SIGNS_PER_TX,
            "verifies_per_tx": VERIFIES_PER_TX,
            "peer_verifies_per_tx": round(self.verifications / self.transactions, 3),
            "signature_ceiling_tx_per_s": round(ceiling, 1),
            "ratio_to_signature_ceiling": round(self.tx_per_s / ceiling, 3),
            "cpu_us_per_tx": round(cpu_us, 1),
            "signature_cpu_us_per_tx": round(self.rates.cpu_us_per_tx(), 1),
            "signature_share_of_cpu": round(self.rates.cpu_us_per_tx() / cpu_us, 3),
            "latency_samples": len(latencies),
            "latency_p50_ms": round(statistics.median(latencies), 3),
            "latency_p99_ms": round(_percentile(latencies, 0.99), 3),
            "latency_max_ms": round(latencies[-1], 3),
            "latency_blocks": self.latency_blocks,
            "orderer_idle_timeout_ms": self.idle_timeout_ms,
            "fsync_per_s": round(self.fsync_per_s, 1),
            "fsync_ms": round(1000 / self.fsync_per_s, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "cores": self.cores,
        }


def e2e_benchmark(
    transactions: int,
    *,
    clients: int = 2,
    sequential: int = 300,
    idle_timeout_s: float = IDLE_TIMEOUT_S,
    synchronous: str = "FULL",
    store: str | None = None,
    status: Callable[[str], None] | None = None,
) -> E2EFigures:
    """Run both phases on a new temporary ledger (in the folder's SQLite file, or in the
    empty PostgreSQL database ``store`` names; see the module's notes); raises
    BenchmarkFailed if a write is refused or does not commit."""
    say = status or (lambda _message: None)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="healthledger-bench-") as tmp:
        orderer = SoloOrderer(idle_timeout_s=idle_timeout_s)
        node = bench_node(Path(tmp) / "data", synchronous=synchronous, orderer=orderer, store=store)
        try:
            node.start()
            say("warming up")
            _open_loop(node, 50, clients=1, start=0)
            say("measuring the Ed25519 sign and verify rates on every core")
            before = signature_rates(processes=cores)
            say(f"{clients} client(s) writing {transactions} transactions, open loop")
            height = node.peer.store.height()
            verified = node.peer.signatures.verified
            cpu = time.process_time()
            seconds, invalid = _open_loop(node, transactions, clients=clients, start=50)
            cpu = time.process_time() - cpu
            blocks = node.peer.store.height() - height
            verifications = node.peer.signatures.verified - verified
            say("measuring the Ed25519 sign and verify rates on every core again")
            after = signature_rates(processes=cores)
            say(f"one client, {sequential} writes one at a time")
            height = node.peer.store.height()
            latency = _sequential(node, sequential, start=50 + transactions)
            latency_blocks = node.peer.store.height() - height
        finally:
            node.stop()
        say("measuring the disk's fsync rate")
        fsync = fsync_per_s(Path(tmp), syncs=200)
    return E2EFigures(
        transactions=transactions,
        clients=clients,
        seconds=seconds,
        blocks=blocks,
        invalid=invalid,
        verifications=verifications,
        cpu_seconds=cpu,
        rates=SignatureRates(
            (before.sign_per_s + after.sign_per_s) / 2,
            (before.verify_per_s + after.verify_per_s) / 2,
            (before.sign_cpu_us + after.sign_cpu_us) / 2,
            (before.verify_cpu_us + after.verify_cpu_us) / 2,
        ),
        latency_ms=tuple(latency),
        latency_blocks=latency_blocks,
        idle_timeout_ms=round(idle_timeout_s * 1000, 3),
        synchronous=synchronous,
        fsync_per_s=fsync,
        peak_rss_mb=peak_rss(),
        cores=cores,
        store=store,
    )


def _open_loop(node: EmbeddedNode, count: int, *, clients: int, start: int) -> tuple[float, int]:
    """``clients`` threads write ``count`` puts between them without waiting for
    commits; returns (seconds from the first signature to the last commit,
    transactions not VALID)."""
    futures: list[list[Future[Receipt]]] = [[] for _ in range(clients)]
    failures: list[BaseException] = []
    go = threading.Event()

    def client(c: int) -> None:
        go.wait()
        try:
            for i in range(start + c, start + count, clients):
                signed = node.propose(
                    BENCH_CLIENT, "bench", "put", {"key": f"k{i:09d}", "value": i}
                )
                tx = node.peer.endorse(signed)
                futures[c].append(node.peer.submit(tx, precheck=False))
        except (NodeError, ValueError) as exc:
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    go.set()
    for thread in threads:
        thread.join()
    every = [f for per_client in futures for f in per_client]
    wait_all(every)
    seconds = time.perf_counter() - started
    if failures:
        raise BenchmarkFailed(f"a client's write was refused: {failures[0]}")
    invalid = 0
    for future in every:
        error = future.exception()
        if error is not None:
            raise BenchmarkFailed(f"a write did not commit: {error}")
        invalid += future.result().code is not ValidationCode.VALID
    return seconds, invalid


def _sequential(node: EmbeddedNode, count: int, *, start: int) -> list[float]:
    """One client writing ``count`` puts, each waited for; milliseconds each."""
    times = []
    for i in range(start, start + count):
        began = time.perf_counter()
        signed = node.propose(BENCH_CLIENT, "bench", "put", {"key": f"k{i:09d}", "value": i})
        try:
            receipt, _ = node.peer.invoke(signed)
        except NodeError as exc:
            raise BenchmarkFailed(f"a write was refused: {exc}") from exc
        times.append((time.perf_counter() - began) * 1000)
        if receipt.code is not ValidationCode.VALID:
            raise BenchmarkFailed(f"a sequential write committed as {receipt.code}")
    return times


def signature_rates(*, processes: int, seconds: float = 0.5) -> SignatureRates:
    """Ed25519 signatures and verifications per second, one process per core each."""
    context = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        signs = list(pool.map(_loop, [("sign", seconds)] * processes))
        verifies = list(pool.map(_loop, [("verify", seconds)] * processes))
    return SignatureRates(
        sum(count / elapsed for count, elapsed, _ in signs),
        sum(count / elapsed for count, elapsed, _ in verifies),
        statistics.median(cpu / count * 1e6 for count, _, cpu in signs),
        statistics.median(cpu / count * 1e6 for count, _, cpu in verifies),
    )


def _loop(job: tuple[str, float]) -> tuple[int, float, float]:
    """(operations, wall seconds, CPU seconds) of ``seconds`` signing or verifying."""
    operation, seconds = job
    key = SigningKey.from_seed(bytes(range(32)))
    public = key.key.public_key()
    # About the size of a benchmark transaction's signed proposal / endorsement payload.
    message = bytes(random.Random(7).randbytes(400))
    signature = key.sign(message)
    count = 0
    cpu = time.process_time()
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        if operation == "sign":
            for _ in range(100):
                key.sign(message)
        else:
            for _ in range(100):
                verify_signature(public, signature, message)
        count += 100
    return count, time.perf_counter() - started, time.process_time() - cpu


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]
