"""Benchmarks that print figures: commit throughput, offline verify rate, proof times.

They run on a temporary one-organisation consortium whose genesis deploys a tiny
benchmark contract, ``bench.put``, writing one key per transaction under a policy
of one peer, so every transaction carries two signatures to check: its creator's
and one endorser's.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from healthledger.cli.bench_contract import BenchContract
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.crypto.keys import SigningKey, verify_signature
from healthledger.ledger.audit import AuditReport, Progress, audit_store
from healthledger.ledger.merkle import InMemoryNodes, MerkleLog, leaf_hash, verify_inclusion
from healthledger.ledger.transaction import Transaction, ValidationCode
from healthledger.node.consortium import OrgPlan
from healthledger.node.embedded import LEDGER_FILE, EmbeddedNode
from healthledger.node.endorsers import replay_validator

BENCH_ORG = "bench-org"
BENCH_CLIENT = f"{BENCH_ORG}/client"
BENCH_PLANS = (OrgPlan(BENCH_ORG, "Benchmark organisation", "hospital", (("client", "client"),)),)
SIGNATURES_PER_TX = 2
"""What validating one benchmark transaction verifies: the creator's and one endorser's."""


def bench_node(
    data_dir: Path, *, synchronous: str = "FULL", store: str | None = None, **options: Any
) -> EmbeddedNode:
    """A new benchmark consortium in ``data_dir`` (not started), its ledger in the
    folder's SQLite file or in the (empty) PostgreSQL database ``store`` names;
    ``options`` go to EmbeddedNode (e.g. its orderer)."""
    return EmbeddedNode.create(
        data_dir,
        contracts=(*SYSTEM_CONTRACTS, BenchContract),
        plans=BENCH_PLANS,
        founder=f"{BENCH_ORG}/admin",
        synchronous=synchronous,
        store=store,
        **options,
    )


def store_kind(store: str | None) -> str:
    """``postgresql`` or ``sqlite``: which store a benchmark's figures are of."""
    return "postgresql" if store else "sqlite"


def durable_commit(store: str | None, synchronous: str = "FULL") -> str:
    """How a benchmark's store makes a commit durable, in words."""
    if store:
        return "PostgreSQL, synchronous_commit=on"
    return f"SQLite WAL, synchronous={synchronous}"


def endorse_puts(node: EmbeddedNode, count: int, *, start: int = 0) -> list[Transaction]:
    """``count`` signed and endorsed ``bench.put`` transactions, not yet submitted."""
    return [
        node.peer.endorse(
            node.propose(BENCH_CLIENT, "bench", "put", {"key": f"k{i:09d}", "value": i})
        )
        for i in range(start, start + count)
    ]


def commit_all(node: EmbeddedNode, transactions: Sequence[Transaction]) -> tuple[float, int]:
    """Submit every transaction to a started node in one ``submit_many`` and wait for
    all to commit; returns (seconds from the first submit to the last commit,
    transactions not VALID)."""
    started = time.perf_counter()
    futures = node.peer.submit_many(transactions, precheck=False)
    wait_all(futures)
    seconds = time.perf_counter() - started
    invalid = sum(1 for f in futures if f.result().code is not ValidationCode.VALID)
    return seconds, invalid


@dataclass(frozen=True, kw_only=True)
class ThroughputFigures:
    """What every commit throughput benchmark measures: transactions committed in a
    timed span, and the process and machine that committed them."""

    transactions: int
    seconds: float
    """The timed span (each benchmark's figures say from what to what)."""
    blocks: int
    invalid: int
    """Transactions committed not VALID."""
    peak_rss_mb: float
    cores: int
    store: str | None = None
    """The PostgreSQL URL the ledger was in; None for the SQLite file."""

    @property
    def tx_per_s(self) -> float:
        """Committed transactions per second over ``seconds``."""
        return self.transactions / self.seconds


@dataclass(frozen=True, kw_only=True)
class CommitFigures(ThroughputFigures):
    """Outcome of ``bench commit``; ``seconds`` runs from the first submit to the last
    commit."""

    endorse_per_s: float
    verify_per_s: float

    @property
    def ceiling(self) -> float:
        """Transactions per second if checking signatures on every core were all there is."""
        return self.verify_per_s / SIGNATURES_PER_TX

    def to_json(self) -> dict[str, Any]:
        """The JSON form (the figures ``bench commit --json`` prints)."""
        return {
            "benchmark": "commit",
            "mode": "pre-endorsed: signing and endorsing happen before the clock starts; "
            f"timed is ordering, validation and durable commit ({durable_commit(self.store)})",
            "store": store_kind(self.store),
            "transactions": self.transactions,
            "seconds": round(self.seconds, 3),
            "tx_per_s": round(self.tx_per_s, 1),
            "blocks": self.blocks,
            "invalid": self.invalid,
            "endorse_per_s": round(self.endorse_per_s, 1),
            "verify_per_s": round(self.verify_per_s, 1),
            "signatures_per_tx": SIGNATURES_PER_TX,
            "verify_ceiling_tx_per_s": round(self.ceiling, 1),
            "ratio_to_verify_ceiling": round(self.tx_per_s / self.ceiling, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "cores": self.cores,
        }


def commit_benchmark(
    transactions: int, *, store: str | None = None, status: Callable[[str], None] | None = None
) -> CommitFigures:
    """Commit ``transactions`` pre-endorsed ``bench.put`` calls through the embedded
    node (solo orderer; SQLite with synchronous=FULL, or the empty PostgreSQL database
    ``store`` names), then measure this machine's Ed25519 verify rate on every core."""
    say = status or (lambda _message: None)
    with tempfile.TemporaryDirectory(prefix="healthledger-bench-") as tmp:
        node = bench_node(Path(tmp) / "data", store=store)
        try:
            say(f"signing and endorsing {transactions} transactions")
            started = time.perf_counter()
            txs = endorse_puts(node, transactions)
            endorse_per_s = transactions / (time.perf_counter() - started)
            say("committing")
            node.start()
            seconds, invalid = commit_all(node, txs)
            blocks = node.peer.store.height() - 1
        finally:
            node.stop()
    peak_rss_mb = peak_rss()
    say("measuring the Ed25519 verify rate on every core")
    cores = os.cpu_count() or 1
    return CommitFigures(
        transactions=transactions,
        seconds=seconds,
        blocks=blocks,
        invalid=invalid,
        endorse_per_s=endorse_per_s,
        verify_per_s=verify_rate(processes=cores),
        peak_rss_mb=peak_rss_mb,
        cores=cores,
        store=store,
    )


def peak_rss() -> float:
    """Peak resident set size of this process, MB."""
    # ru_maxrss is in KiB on Linux (bytes on macOS, where this reads high).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def verify_rate(*, processes: int, seconds: float = 1.0) -> float:
    """Ed25519 verifications per second of this machine, one process per core."""
    return verify_rate_and_cpu(processes=processes, seconds=seconds)[0]


def verify_rate_and_cpu(*, processes: int, seconds: float = 1.0) -> tuple[float, float]:
    """Ed25519 verifications per second of this machine, one process per core, and the
    CPU microseconds one verification takes in them (what others' load on the machine
    changes least)."""
    context = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        results = list(pool.map(_verify_loop, [seconds] * processes))
    rate = sum(count / elapsed for count, elapsed, _ in results)
    cpu_us = 1e6 * sum(cpu for _, _, cpu in results) / sum(count for count, _, _ in results)
    return rate, cpu_us


def _verify_loop(seconds: float) -> tuple[int, float, float]:
    key = SigningKey.from_seed(bytes(range(32)))
    public = key.key.public_key()
    # A message about the size of a benchmark transaction's endorsement payload.
    message = bytes(random.Random(7).randbytes(600))
    signature = key.sign(message)
    count = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            verify_signature(public, signature, message)
        count += 100
    return count, time.perf_counter() - started, time.process_time() - cpu_started


@dataclass(frozen=True)
class VerifyFigures:
    """Outcome of ``bench verify``."""

    transactions: int
    build_seconds: float
    report: AuditReport
    verify_per_s: float
    cpu_s: float
    """CPU seconds of the audit: this process's and its signature workers'."""
    verify_cpu_us: float
    """CPU microseconds of one Ed25519 verification, measured beside the rate."""
    store: str = "sqlite"
    """Which store the audited ledger is in (a PostgreSQL server's own CPU is not in
    ``cpu_s``)."""

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        ceiling = self.verify_per_s / SIGNATURES_PER_TX
        cpu_us = 1e6 * self.cpu_s / self.report.transactions
        signature_us = SIGNATURES_PER_TX * self.verify_cpu_us
        return {
            "benchmark": "verify",
            "store": self.store,
            "transactions": self.report.transactions,
            "blocks": self.report.blocks,
            "build_seconds": round(self.build_seconds, 3),
            "seconds": round(self.report.seconds, 3),
            "tx_per_s": round(self.report.tx_per_s, 1),
            "workers": self.report.workers,
            "verify_per_s": round(self.verify_per_s, 1),
            "verify_ceiling_tx_per_s": round(ceiling, 1),
            "ratio_to_verify_ceiling": round(self.report.tx_per_s / ceiling, 3),
            # The same ratio in CPU rather than wall time: the audit's CPU a transaction
            # against its signatures' CPU, which others' load on the machine changes less.
            "cpu_us_per_tx": round(cpu_us, 1),
            "signature_cpu_us_per_tx": round(signature_us, 1),
            "non_signature_cpu_us_per_tx": round(cpu_us - signature_us, 1),
            "signature_share_of_cpu": round(signature_us / cpu_us, 3),
        }


def verify_benchmark(
    transactions: int,
    *,
    store: str | None = None,
    status: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> VerifyFigures:
    """Build a ledger of ``transactions`` ``bench.put`` calls (in an SQLite file, or in the
    empty PostgreSQL database ``store`` names), audit it offline, and measure this
    machine's Ed25519 verify rate on every core, just before and just after the audit,
    for comparison."""
    say = status or (lambda _message: None)
    with tempfile.TemporaryDirectory(prefix="healthledger-bench-") as tmp:
        # Durability is not what is measured here: build without fsync.
        node = bench_node(Path(tmp) / "data", synchronous="OFF", store=store)
        started = time.perf_counter()
        try:
            say(f"building a ledger of {transactions} transactions")
            txs = endorse_puts(node, transactions)
            node.start()
            commit_all(node, txs)
        finally:
            node.stop()
        build_seconds = time.perf_counter() - started
        # The verify rate just before and just after the audit, averaged: on a machine
        # others share, a rate taken at another moment compares poorly.
        cores = os.cpu_count() or 1
        say("measuring the Ed25519 verify rate on every core")
        before, before_us = verify_rate_and_cpu(processes=cores)
        say("auditing")
        # The signature workers are waited for before audit_store returns, so their CPU
        # is in RUSAGE_CHILDREN by then.
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_started = time.process_time()
        report = audit_store(
            store or Path(tmp) / "data" / LEDGER_FILE,
            validator=replay_validator,
            progress=progress,
        )
        cpu_s = time.process_time() - cpu_started
        ended = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_s += (ended.ru_utime + ended.ru_stime) - (children.ru_utime + children.ru_stime)
        say("measuring the Ed25519 verify rate on every core again")
        after, after_us = verify_rate_and_cpu(processes=cores)
    return VerifyFigures(
        transactions,
        build_seconds,
        report,
        (before + after) / 2,
        cpu_s=cpu_s,
        verify_cpu_us=(before_us + after_us) / 2,
        store=store_kind(store),
    )


@dataclass(frozen=True)
class ProofFigures:
    """Outcome of ``bench proof``: times in milliseconds."""

    leaves: int
    build_seconds: float
    samples: int
    proof_ms: list[float]
    verify_ms: list[float]
    proof_length: float

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "benchmark": "proof",
            "leaves": self.leaves,
            "build_seconds": round(self.build_seconds, 3),
            "samples": self.samples,
            "proof_median_ms": round(statistics.median(self.proof_ms), 4),
            "proof_p99_ms": round(_p99(self.proof_ms), 4),
            "verify_median_ms": round(statistics.median(self.verify_ms), 4),
            "verify_p99_ms": round(_p99(self.verify_ms), 4),
            "mean_proof_hashes": round(self.proof_length, 1),
        }


def proof_benchmark(leaves: int = 1_000_000, *, samples: int = 2000, seed: int = 1) -> ProofFigures:
    """Build a global log of ``leaves`` leaves (nodes in memory), then time inclusion
    proofs (with the root they lead to) and their verification at random leaves."""
    nodes = InMemoryNodes()
    log = MerkleLog(nodes, 0)
    started = time.perf_counter()
    batch = 10_000
    for first in range(0, leaves, batch):
        append = log.plan_append(
            [leaf_hash(i.to_bytes(8, "big")) for i in range(first, min(first + batch, leaves))]
        )
        nodes.put_nodes(append.nodes)
        log.advance(append)
    build_seconds = time.perf_counter() - started
    rng = random.Random(seed)
    proof_ms: list[float] = []
    verify_ms: list[float] = []
    lengths = 0
    for _ in range(samples):
        index = rng.randrange(leaves)
        leaf = leaf_hash(index.to_bytes(8, "big"))
        t0 = time.perf_counter()
        proof = log.inclusion_proof(index)
        root = log.root()
        t1 = time.perf_counter()
        verify_inclusion(
            leaf_index=index,
            tree_size=leaves,
            leaf_hash=leaf,
            proof=proof,
            root=root,
        )
        t2 = time.perf_counter()
        proof_ms.append((t1 - t0) * 1000)
        verify_ms.append((t2 - t1) * 1000)
        lengths += len(proof)
    return ProofFigures(leaves, build_seconds, samples, proof_ms, verify_ms, lengths / samples)


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
