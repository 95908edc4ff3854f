"""Endurance under network partitions: load stays on while links between the NATS
servers, and between peers and servers, are cut and mended at random, seeded
moments; then the script heals everything, waits for every peer to converge and
reports, as JSON (the last line):

- ``cycles``: partitions made and healed;
- ``acknowledged``: transactions whose submitter got a VALID receipt;
- ``committed``: distinct transactions on the first peer's chain;
- ``lost``: acknowledged transactions missing on some peer;
- ``duplicated``: extra copies of a transaction on some peer's chain;
- ``diverged``: peers whose block differs from the first peer's at some height, at the
  end or at any moment the watcher looked while the network was split.

Setup: three NATS servers (``sync_interval: always``, stream replicas 3) and three
consortium peer processes, each with three submitters, every one in a network namespace
of its own (``tests/support/netns.py``; needs root and iproute2). A cycle is one of:
the stream leader cut off from everything; a random server cut off from everything;
a server in a minority (cut from the other two, its clients still reach it); a peer
cut off from every server; a peer cut from the server it uses; a flapping link
(leader-follower and peer-server, cut and mended every fraction of a second). Each
holds 2-10 s, then everything heals for 2-5 s.

Usage (from the project folder): python -m benchmarks.partition --minutes M [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.support.jetstream_peer import read_ledger
from tests.support.partition_rig import PEERS, SERVERS, PartitionRig

from healthledger.node.embedded import LEDGER_FILE

CONVERGE_S = 180.0


def partition_once(rig: PartitionRig, rng: random.Random) -> str:
    """Make one random partition, hold it, heal it; the kind made."""
    kind = rng.choice(["leader", "server", "minority", "peer", "peer-server", "flapping"])
    hold = rng.uniform(2.0, 10.0)
    lab = rig.lab
    if kind == "leader":
        lab.isolate(rig.stream_leader() or rng.choice(SERVERS))
    elif kind == "server":
        lab.isolate(rng.choice(SERVERS))
    elif kind == "minority":
        lab.isolate(rng.choice(SERVERS), from_=SERVERS)
    elif kind == "peer":
        lab.isolate(rng.choice(PEERS), from_=SERVERS)
    elif kind == "peer-server":
        peer = rng.choice(rig.peers)
        lab.cut(peer.node, rig.server_of(peer) or rng.choice(SERVERS))
    if kind != "flapping":
        time.sleep(hold)
    else:
        leader = rig.stream_leader() or rng.choice(SERVERS)
        follower = rng.choice([s for s in SERVERS if s != leader])
        peer = rng.choice(PEERS)
        server = rng.choice(SERVERS)
        deadline = time.monotonic() + hold
        while time.monotonic() < deadline:
            lab.cut(leader, follower)
            lab.cut(peer, server)
            time.sleep(rng.uniform(0.2, 1.0))
            lab.heal()
            time.sleep(rng.uniform(0.2, 1.0))
    lab.heal()
    time.sleep(rng.uniform(2.0, 5.0))
    return kind


def committed_after_genesis(folder: Path) -> int:
    """Distinct transactions in blocks after the genesis block of ``folder``'s ledger."""
    db = sqlite3.connect(f"file:{folder / LEDGER_FILE}?mode=ro", uri=True, timeout=10)
    try:
        row = db.execute("SELECT COUNT(DISTINCT tx_id) FROM txs WHERE height > 0").fetchone()
    finally:
        db.close()
    return int(row[0])


def run(base: Path, *, minutes: float, seed: int) -> dict[str, Any]:
    """Run the load and the partitions, converge, and count."""
    rng = random.Random(seed)
    kinds: Counter[str] = Counter()
    with PartitionRig(base, stream="PARTITION") as rig:
        rig.wait_acked(30, "load before the first partition")
        began = time.monotonic()
        until = began + 60 * minutes
        while time.monotonic() < until:
            kinds[partition_once(rig, rng)] += 1
        loaded = time.monotonic() - began
        rig.drain_and_converge(timeout=CONVERGE_S)
        found = rig.collect()
    acked = {tx for tx, code in found.acked.items() if code == "VALID"}
    chains = [read_ledger(p.folder) for p in rig.peers]
    reference_hashes = chains[0][0]
    lost: set[str] = set()
    duplicated = 0
    diverged = 0
    for hashes, tx_ids in chains:
        lost |= acked - set(tx_ids)
        duplicated += len(tx_ids) - len(set(tx_ids))
        diverged += any(a != b for a, b in zip(hashes, reference_hashes, strict=False))
    return {
        "minutes": minutes,
        "seed": seed,
        "kinds": dict(kinds),
        "refused": len(found.refused),
        "crashed": len(found.crashed),
        "heights": [len(hashes) for hashes, _ in chains],
        "acknowledged_tx_per_s": round(len(acked) / loaded, 1),
        "cycles": sum(kinds.values()),
        "acknowledged": len(acked),
        "committed": committed_after_genesis(rig.peers[0].folder),
        "lost": len(lost),
        "duplicated": duplicated,
        "diverged": diverged + len(found.forks),
    }


def main() -> None:
    """Parse the arguments and print the figures as JSON (the last line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hl-partition-") as tmp:
        figures = run(Path(tmp), minutes=args.minutes, seed=args.seed)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
