"""Cost growth of a consortium with its size (issue 16 item 4): the same run of
``healthledger bench network --clients`` (HTTP client processes signing in the clock,
a peer process per organisation, three NATS servers, fsync before every ack) at 3, 5
and 9 peers, its peak alone.

Every peer validates and commits every block, so each one added costs CPU on the
same two cores; the clients write through the first organisations' peers (client i
through peer i mod peers), so the peers added only follow. Per size: committed tx/s on
every peer, p50/p99 from signing to receipt, CPU per committed transaction over every
process and by kind (all peers, one peer on average, NATS, the clients), each peer's
share of a core, and tx/s and CPU per transaction as a ratio to the smallest size.
The machine's load average is read before and after each size (others share it).

Printed as a Markdown table, then the same figures as one JSON line (the last line).

Usage: python benchmarks/network_growth.py [--peers 3,5,9] [--tx 1500] [--clients 2]
       [--concurrency 64] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from healthledger.cli.bench_clients import clients_benchmark
from healthledger.cli.reporting import BenchmarkFailed

COLUMNS = (
    ("peers", "peers", "{:d}"),
    ("tx_per_s", "tx/s on every peer", "{:,.0f}"),
    ("tx_per_s_ratio", "tx/s ÷ smallest", "{:.2f}"),
    ("p50_ms", "p50 ms", "{:,.0f}"),
    ("p99_ms", "p99 ms", "{:,.0f}"),
    ("per_peer_cpu_cores", "CPU per peer (cores)", "{:.2f}"),
    ("per_peer_cpu_ms_per_tx", "CPU per peer, ms/tx", "{:.2f}"),
    ("peers_cpu_ms_per_tx", "all peers, ms/tx", "{:.2f}"),
    ("nats_cpu_ms_per_tx", "NATS, ms/tx", "{:.2f}"),
    ("clients_cpu_ms_per_tx", "clients, ms/tx", "{:.2f}"),
    ("cpu_ms_per_tx", "all processes, ms/tx", "{:.2f}"),
    ("cpu_ms_per_tx_ratio", "all ms/tx ÷ smallest", "{:.2f}"),
    ("load", "load average before → after", "{}"),
)


def measure(peers: int, *, tx: int, clients: int, concurrency: int) -> dict[str, Any]:
    """One size: the peak of ``bench network --clients`` at ``peers`` peers."""
    before = os.getloadavg()[0]
    started = time.monotonic()
    found = clients_benchmark(
        tx, clients=clients, concurrency=concurrency, peers=peers, paced=False, in_process=False
    )
    row: dict[str, Any] = {"peers": peers}
    for key in (
        "tx_per_s",
        "p50_ms",
        "p99_ms",
        "failures",
        "invalid",
        "cpu_ms_per_tx",
        "peers_cpu_ms_per_tx",
        "per_peer_cpu_ms_per_tx",
        "per_peer_cpu_cores",
        "nats_cpu_ms_per_tx",
        "clients_cpu_ms_per_tx",
        "cpu_cores_by_peer",
    ):
        row[key] = found[f"peak_{key}"]
    row["identical_heads"] = found["identical_heads"]
    row["load"] = f"{before:.1f} → {os.getloadavg()[0]:.1f}"
    row["seconds"] = round(time.monotonic() - started, 1)
    return row


def growth(sizes: list[int], *, tx: int, clients: int, concurrency: int) -> dict[str, Any]:
    """Every size's row, with ratios to the smallest size measured in the same run."""
    rows = [measure(n, tx=tx, clients=clients, concurrency=concurrency) for n in sizes]
    first = rows[0]
    for row in rows:
        row["tx_per_s_ratio"] = round(row["tx_per_s"] / first["tx_per_s"], 3)
        row["cpu_ms_per_tx_ratio"] = round(row["cpu_ms_per_tx"] / first["cpu_ms_per_tx"], 3)
    return {
        "benchmark": "network cost growth (bench network --clients, peak)",
        "transactions": tx,
        "clients": clients,
        "calls_in_flight_per_client": concurrency,
        "nats_servers": 3,
        "cores": os.cpu_count(),
        "rows": rows,
    }


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table."""
    lines = [
        f"{report['transactions']:,} calls from {report['clients']} HTTP client processes "
        f"({report['calls_in_flight_per_client']} in flight each), 3 NATS servers, "
        f"{report['cores']} cores",
        "",
        "| " + " | ".join(title for _, title, _ in COLUMNS) + " |",
        "|" + "|".join("--:" if key != "load" else "---" for key, _, _ in COLUMNS) + "|",
    ]
    for row in report["rows"]:
        lines.append("| " + " | ".join(fmt.format(row[key]) for key, _, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, measure every size, print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers", default="3,5,9", help="Sizes, comma-separated (2 to 10).")
    parser.add_argument("--tx", type=int, default=1500, help="Calls at each size.")
    parser.add_argument("--clients", type=int, default=2, help="Client processes.")
    parser.add_argument("--concurrency", type=int, default=64, help="Calls in flight a client.")
    parser.add_argument("--json", action="store_true", help="Print the JSON line alone.")
    args = parser.parse_args(argv)
    try:
        sizes = [int(p) for p in args.peers.split(",") if p.strip()]
    except ValueError:
        parser.error(f"--peers takes sizes such as 3,5,9, not {args.peers!r}")
    if not sizes or any(not 1 <= n <= 10 for n in sizes):
        parser.error("--peers takes sizes from 1 to 10 (the demo's organisations)")
    if args.tx < 1 or args.clients < 1 or args.concurrency < 1:
        parser.error("--tx, --clients and --concurrency are 1 or more")
    try:
        report = growth(sizes, tx=args.tx, clients=args.clients, concurrency=args.concurrency)
    except BenchmarkFailed as exc:
        print(f"network_growth: {exc}", file=sys.stderr)
        return 1
    if not args.json:
        print(markdown(report))
        print()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
