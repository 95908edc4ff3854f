"""Power cuts that lose what was not synced: the long run of
``tests/integration/test_faults_powercut.py``.

Each cycle mounts the node's data folder through a filesystem that keeps unsynced
writes in memory (``tests/support/powercut_fs.py``, a stand-in for LazyFS), runs an
embedded node in a child process committing small blocks while its client records
every acknowledged transaction id, kills it (SIGKILL) at a seeded random moment,
drops every unsynced write, and checks the folder as the restarted peer finds it:
start-up checks, every acknowledged transaction present, offline audit. The store
runs WAL with ``synchronous=FULL`` (``--synchronous OFF`` shows the harness losing
acknowledged transactions).

Needs root and /dev/fuse. Prints the figures as JSON, then the headline:
``cycles N, acknowledged A, lost L``.

Usage: python benchmarks/powercut.py [--cycles 30] [--seed 1] [--most-acks 60]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.powercut import run_power_cuts


def main() -> None:
    """Run the power cuts and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--most-acks", type=int, default=60)
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "EXTRA", "NORMAL", "OFF"])
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="powercut-") as root:
        figures = run_power_cuts(
            Path(root),
            cycles=args.cycles,
            seed=args.seed,
            synchronous=args.synchronous,
            most_acks=args.most_acks,
        )
    report = asdict(figures) | {
        "synchronous": args.synchronous,
        "seed": args.seed,
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(report))
    print(f"cycles {figures.cycles}, acknowledged {figures.acknowledged}, lost {figures.lost}")


if __name__ == "__main__":
    main()
