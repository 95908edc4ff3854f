"""The embedded node's commit path on each ledger store: SQLite (the folder's file, WAL,
``synchronous=FULL``) and PostgreSQL 15 (a throw-away server started here from Debian's
packages, ``fsync=on``, ``synchronous_commit=on``, on a unix socket of the same machine).

Each round founds a benchmark consortium on one store, endorses N ``bench.put``
transactions before the clock (as ``healthledger bench commit`` does), then times their
ordering, validation and durable commit. Rounds alternate between the stores so both
see the same machine load. Per store it prints the median tx/s, and what a peer costs
per committed transaction: CPU seconds of the node process and of the PostgreSQL
server's processes (from /proc, so exited backends count through the postmaster's
reaped children), disk bytes of the ledger once the node stopped cleanly (SQLite: the
file, its write-ahead log folded in; PostgreSQL: ``pg_database_size`` growth, tables,
indexes and compressed block bodies, its own WAL segments apart), and the
resident memory of the node process and of the server; then one client's wait for its
own write (sign to durable receipt, one write at a time, p50 and p99), where a store's
commit latency shows rather than its throughput; then the offline audit of the ledger
it made (``healthledger verify``: tx/s, and the CPU of this process, its signature
checks included, and of the server a transaction).

Usage: python benchmarks/store_backends.py [--tx 2000] [--rounds 2] [--sequential 100] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import postgres_processes as processes
from tests.support.postgres import PostgresServer

from healthledger.cli.bench import BENCH_CLIENT, bench_node, commit_all, endorse_puts
from healthledger.ledger.audit import audit_store
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.embedded import LEDGER_FILE, EmbeddedNode
from healthledger.node.endorsers import replay_validator
from healthledger.ordering.solo import IDLE_TIMEOUT_S, SoloOrderer

PAGE = os.sysconf("SC_PAGE_SIZE")


def postmaster(server: PostgresServer) -> int:
    """The pid of the server's postmaster."""
    return int((server.data / "postmaster.pid").read_text().split()[0])


def server_cpu_s(server: PostgresServer) -> float:
    """CPU seconds the server's processes used so far (live ones, and exited backends
    through the postmaster's reaped-children counters)."""
    return processes.server_cpu_s(postmaster(server))


def server_rss_mb(server: PostgresServer) -> float:
    """Resident memory of the server's processes, MB, shared memory counted once."""
    return processes.server_rss_mib(postmaster(server))


def self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def current_rss_mb() -> float:
    resident = int(Path("/proc/self/statm").read_text().split()[1])
    return resident * PAGE / 2**20


def sequential_ms(node: EmbeddedNode, count: int, *, start: int) -> list[float]:
    """One client writing ``count`` puts one at a time, each waited for until its
    block is durable: milliseconds from signing to receipt, each."""
    times = []
    for i in range(start, start + count):
        began = time.perf_counter()
        signed = node.propose(BENCH_CLIENT, "bench", "put", {"key": f"s{i:09d}", "value": i})
        receipt, _ = node.peer.invoke(signed)
        times.append((time.perf_counter() - began) * 1000)
        if receipt.code is not ValidationCode.VALID:
            raise SystemExit(f"a sequential write committed as {receipt.code}")
    return times


def one_round(
    kind: str, transactions: int, server: PostgresServer, *, sequential: int
) -> dict[str, Any]:
    """Found, endorse, then time the commits of ``transactions`` on store ``kind``, then
    ``sequential`` writes one at a time."""
    with tempfile.TemporaryDirectory(prefix="healthledger-bench-") as tmp:
        data = Path(tmp) / "data"
        url = server.create_database() if kind == "postgresql" else None
        # Blocks are cut when the orderer goes idle, as `bench e2e` does: one waiting
        # client's write is its own block at once.
        node = bench_node(data, store=url, orderer=SoloOrderer(idle_timeout_s=IDLE_TIMEOUT_S))
        try:
            txs = endorse_puts(node, transactions)
            tx_bytes = sum(len(tx.canonical) for tx in txs) / transactions
            node.start()
            size_before = ledger_bytes(kind, data, url, server)
            cpu_before, server_before = self_cpu_s(), server_cpu_s(server)
            seconds, invalid = commit_all(node, txs)
            cpu = self_cpu_s() - cpu_before
            server_cpu = server_cpu_s(server) - server_before if url else 0.0
            blocks = node.peer.store.height() - 1
            rss = current_rss_mb()
            pg_rss = server_rss_mb(server) if url else 0.0
            latency = sorted(sequential_ms(node, sequential, start=transactions))
        finally:
            node.stop()
        # After a clean stop, which folds SQLite's write-ahead log into the file.
        size_after = ledger_bytes(kind, data, url, server)
        cpu_before, server_before = self_cpu_s(), server_cpu_s(server)
        audit = audit_store(url or data / LEDGER_FILE, validator=replay_validator)
        audit_cpu = self_cpu_s() - cpu_before
        audit_server_cpu = server_cpu_s(server) - server_before if url else 0.0
    return {
        "store": kind,
        "transactions": transactions,
        "invalid": invalid,
        "blocks": blocks,
        "seconds": seconds,
        "tx_per_s": transactions / seconds,
        "node_cpu_ms_per_tx": 1000 * cpu / transactions,
        "server_cpu_ms_per_tx": 1000 * server_cpu / transactions,
        "disk_bytes_per_tx": (size_after - size_before) / transactions,
        "tx_canonical_bytes": tx_bytes,
        "node_rss_mb": rss,
        "server_rss_mb": pg_rss,
        "sequential_p50_ms": statistics.median(latency),
        "sequential_p99_ms": latency[min(len(latency) - 1, round(0.99 * (len(latency) - 1)))],
        "audit_tx_per_s": audit.tx_per_s,
        "audit_cpu_ms_per_tx": 1000 * audit_cpu / audit.transactions,
        "audit_server_cpu_ms_per_tx": 1000 * audit_server_cpu / audit.transactions,
    }


def ledger_bytes(kind: str, data: Path, url: str | None, server: PostgresServer) -> int:
    """Bytes the ledger takes: the SQLite file and its WAL, or the database's size."""
    if url is None:
        return sum(p.stat().st_size for p in data.glob("ledger.sqlite*"))
    (size,) = server.execute(url, "SELECT pg_database_size(current_database())")[0]
    return int(size)  # type: ignore[call-overload]


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of every figure over the rounds of one store."""
    out: dict[str, Any] = {"store": rounds[0]["store"], "rounds": len(rounds)}
    for key, value in rounds[0].items():
        if isinstance(value, int | float) and key != "transactions":
            out[key] = round(statistics.median(r[key] for r in rounds), 3)
    out["transactions"] = rounds[0]["transactions"]
    out["tx_per_s_each"] = [round(r["tx_per_s"], 1) for r in rounds]
    return out


def main() -> None:
    """Alternate the stores for ``--rounds`` rounds each; print medians per store."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tx", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sequential", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load_start = os.getloadavg()
    server = PostgresServer()
    try:
        results: dict[str, list[dict[str, Any]]] = {"sqlite": [], "postgresql": []}
        for _ in range(args.rounds):
            for kind in results:
                results[kind].append(one_round(kind, args.tx, server, sequential=args.sequential))
                if not args.json:
                    r = results[kind][-1]
                    print(f"{kind:10s} {r['tx_per_s']:8.1f} tx/s", flush=True)
    finally:
        server.stop()
    report = {
        "benchmark": "store_backends",
        "mode": "embedded node, pre-endorsed bench.put, ordering + validation + durable "
        "commit timed; SQLite WAL synchronous=FULL vs PostgreSQL 15 fsync=on "
        "synchronous_commit=on over a unix socket",
        "stores": {kind: summary(rounds) for kind, rounds in results.items()},
        "load_start": [round(x, 2) for x in load_start],
        "load_end": [round(x, 2) for x in os.getloadavg()],
        "cores": os.cpu_count(),
    }
    sqlite, postgres = report["stores"]["sqlite"], report["stores"]["postgresql"]
    report["postgresql_to_sqlite_tx_per_s"] = round(postgres["tx_per_s"] / sqlite["tx_per_s"], 3)
    report["postgresql_to_sqlite_disk_bytes"] = round(
        postgres["disk_bytes_per_tx"] / sqlite["disk_bytes_per_tx"], 3
    )
    report["postgresql_to_sqlite_audit_tx_per_s"] = round(
        postgres["audit_tx_per_s"] / sqlite["audit_tx_per_s"], 3
    )
    print(json.dumps(report, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
