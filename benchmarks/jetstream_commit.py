"""Publish-to-commit throughput and latency through a three-server NATS JetStream
cluster, with ``sync_interval: always`` (fsync before ack) and with the default.

Two peers on copies of one bench consortium each consume the stream and commit every
block; transactions (endorsed beforehand) are submitted open loop from 8 threads,
50 at a time with ``Peer.submit_many`` (each call waits for the stream's acks, not
for the commits) through both peers alternately; a second pass, one at a time, keeps
at most 32 in flight (closed loop: each thread waits for its commit) to show latency
below saturation. Latency: from a submit to its commit on every peer (``p50_ms``,
``p99_ms``) and on the submitting peer alone (``local_p50_ms``). The measurement
itself lives in ``healthledger.cli.bench_network``. Throughput: transactions / (first
submit to the last commit on every peer).

Usage: python benchmarks/jetstream_commit.py [TRANSACTIONS] [PEERS]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from healthledger.cli.bench import bench_node, endorse_puts
from healthledger.cli.bench_network import BATCH, NetworkFigures, measure


def main() -> None:
    """Print the figures as JSON."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    peers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    with tempfile.TemporaryDirectory(prefix="hl-js-bench-") as tmp:
        base = Path(tmp)
        node = bench_node(base / "template")
        txs = endorse_puts(node, count)
        node.stop()
        results: dict[tuple[bool, bool], NetworkFigures] = {
            (sync, closed): measure(
                base,
                base / "template",
                txs,
                peers=peers,
                sync_always=sync,
                closed_loop=closed,
                batch=1 if closed else BATCH,
            )
            for closed in (False, True)
            for sync in (True, False)
        }

    def ratio(closed: bool, figure: str) -> float:
        always: float = results[True, closed].to_json()[figure]
        default: float = results[False, closed].to_json()[figure]
        return round(always / default, 3)

    print(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count()},
                "runs": [r.to_json() for r in results.values()],
                "always_over_default": {
                    load: {f: ratio(closed, f) for f in ("tx_per_s", "p50_ms")}
                    for load, closed in (("open_loop", False), ("closed_loop", True))
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
