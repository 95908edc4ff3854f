"""Publish-to-commit throughput and latency through a three-server NATS JetStream
cluster, with ``sync_interval: always`` (fsync before ack) and with the default.

Two peers on copies of one bench consortium each consume the stream and commit every
block; transactions (endorsed beforehand) are submitted open loop from 32 threads
(each submit waits for the stream's ack, not for the commit) through both peers
alternately; a second pass keeps at most 32 in flight (closed loop: each thread
waits for its commit) to show latency below saturation. Latency: from a submit to
its commit on the submitting peer.
Throughput: transactions / (first submit to the last commit on every peer).

Usage: python benchmarks/jetstream_commit.py [TRANSACTIONS] [PEERS]
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from healthledger.cli.bench import bench_node, endorse_puts
from healthledger.cli.bench_contract import BenchContract
from healthledger.contracts.runtime import ContractRuntime
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.ledger.sqlite_store import SqliteStore
from healthledger.ledger.transaction import Transaction, ValidationCode
from healthledger.node.embedded import KEYSTORE_FILE, LEDGER_FILE
from healthledger.node.keystore import Keystore
from healthledger.node.peer import Peer
from healthledger.node.vault import VaultSet
from healthledger.ordering.jetstream import JetStreamOrderer
from healthledger.ordering.nats_cluster import NatsCluster
from healthledger.ordering.solo import wall_clock_ms

CONTRACTS = (*SYSTEM_CONTRACTS, BenchContract)
SUBMITTERS = 32


def run(
    base: Path,
    template: Path,
    txs: list[Transaction],
    *,
    peers: int,
    sync_always: bool,
    closed_loop: bool,
) -> dict[str, Any]:
    """One measured run on a fresh cluster and fresh peer folders."""
    label = ("always" if sync_always else "default") + ("-closed" if closed_loop else "-open")
    cluster = NatsCluster(base / f"nats-{label}", sync_always=sync_always).start()
    nodes: list[Peer] = []
    try:
        for i in range(peers):
            data = base / f"peer-{label}-{i}"
            shutil.copytree(template, data)
            nodes.append(
                Peer(
                    store=SqliteStore(data / LEDGER_FILE),
                    runtime=ContractRuntime(CONTRACTS),
                    orderer=JetStreamOrderer(
                        servers=cluster.urls, max_block_tx=500, batch_timeout_s=0.05
                    ),
                    endorsers=Keystore.load(data / KEYSTORE_FILE).peers(),
                    vaults=VaultSet({}),
                    clock=wall_clock_ms,
                )
            )
        for node in nodes:
            node.start()
        start_height = nodes[0].store.height()
        latencies: list[float] = []
        futures = []

        def submit(item: tuple[int, Transaction]) -> None:
            index, tx = item
            began = time.perf_counter()
            future = nodes[index % peers].submit(tx, precheck=False)
            future.add_done_callback(lambda _: latencies.append(time.perf_counter() - began))
            futures.append(future)
            if closed_loop:
                future.result(120)

        began = time.perf_counter()
        with ThreadPoolExecutor(SUBMITTERS) as pool:
            list(pool.map(submit, enumerate(txs)))
        published = time.perf_counter() - began
        invalid = sum(f.result(120).code is not ValidationCode.VALID for f in futures)
        final = max(n.store.height() for n in nodes)
        while min(n.store.height() for n in nodes) < final:
            time.sleep(0.005)
        elapsed = time.perf_counter() - began
        heads = {n.store.header(final - 1).hash for n in nodes}
        latencies.sort()
        return {
            "sync_interval": "always" if sync_always else "default",
            "load": f"closed loop, {SUBMITTERS} in flight" if closed_loop else "open loop",
            "transactions": len(txs),
            "peers": peers,
            "blocks": final - start_height,
            "seconds": round(elapsed, 3),
            "tx_per_s": round(len(txs) / elapsed, 1),
            "published_tx_per_s": round(len(txs) / published, 1),
            "invalid": invalid,
            "latency_p50_ms": round(1000 * statistics.median(latencies), 1),
            "latency_p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1),
            "identical_heads": len(heads) == 1,
        }
    finally:
        for node in nodes:
            node.stop()
            node.store.close()
        cluster.stop()


def main() -> None:
    """Print the figures as JSON."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    peers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    with tempfile.TemporaryDirectory(prefix="hl-js-bench-") as tmp:
        base = Path(tmp)
        node = bench_node(base / "template")
        txs = endorse_puts(node, count)
        node.stop()
        results = {
            (sync, closed): run(
                base,
                base / "template",
                txs,
                peers=peers,
                sync_always=sync,
                closed_loop=closed,
            )
            for closed in (False, True)
            for sync in (True, False)
        }

    def ratio(closed: bool, figure: str) -> float:
        always: float = results[True, closed][figure]
        default: float = results[False, closed][figure]
        return round(always / default, 3)

    print(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count()},
                "runs": list(results.values()),
                "always_over_default": {
                    load: {f: ratio(closed, f) for f in ("tx_per_s", "latency_p50_ms")}
                    for load, closed in (("open_loop", False), ("closed_loop", True))
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
