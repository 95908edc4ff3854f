"""How fast the demo's data grow while it serves live traffic.

Founds the demo consortium in a fresh folder, runs every application's simulated
history (as `healthledger demo` does), then ROUNDS live rounds (`App.live_step` of
each application, as the demo's background traffic runs them every `--live-every`
seconds, 3 by default) on a clock that steps 3 s per round, and prints the bytes and
transactions each round adds, per hour and per day of a demo left running.

The epidemic's live reports are capped a day (apps/epidemic/wave.py), so the figures
of a short run over-state its share; the supply's live cases are bounded in number
but keep moving, so its share is steady.

    python benchmarks/demo_growth.py [--rounds 300] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import closing
from pathlib import Path

from healthledger.apps import App
from healthledger.apps.registry import INSTALLED_APPS, installed_contracts
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.demo.traffic import LiveTraffic
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.seam import attach

ROUND_S = 3
"""The demo's default seconds between live rounds."""


class SteppingClock:
    """Milliseconds that move only when the benchmark says so."""

    def __init__(self) -> None:
        self.now = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.now


def folder_bytes(folder: Path) -> int:
    """Bytes the folder's data take: SQLite databases by their pages (what a checkpoint
    leaves, WAL content included; the -wal and -shm files are reused, not grown), other
    files by their size."""
    total = 0
    for path in folder.rglob("*"):
        if not path.is_file() or path.name.endswith(("-wal", "-shm", "-journal")):
            continue
        if path.suffix == ".sqlite":
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                pages = db.execute("PRAGMA page_count").fetchone()[0]
                size = db.execute("PRAGMA page_size").fetchone()[0]
                free = db.execute("PRAGMA freelist_count").fetchone()[0]
            total += (pages - free) * size
        else:
            total += path.stat().st_size
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()
    clock = SteppingClock()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "demo"
        node = EmbeddedNode.create(
            data,
            contracts=installed_contracts(),
            plans=DEMO_ORGS,
            clock=clock,
            batch_timeout_s=0.01,
        )
        node.start()
        try:
            rng = random.Random(options.seed)
            for app in INSTALLED_APPS:
                if app.simulate is not None:
                    app.simulate(attach(node, app), rng)
            steps = [(app.name, _step(app)) for app in INSTALLED_APPS if app.live_step is not None]
            live = LiveTraffic(node, steps, rng, every=ROUND_S)
            bytes_before = folder_bytes(data)
            log_before = _log_size(node)
            started = time.perf_counter()
            for _ in range(options.rounds):
                clock.now += ROUND_S * 1000
                live.run_round()
            elapsed = time.perf_counter() - started
            grown = folder_bytes(data) - bytes_before
            txs = _log_size(node) - log_before
        finally:
            node.stop()
    per_round = grown / options.rounds
    rounds_an_hour = 3600 / ROUND_S
    print(f"live rounds: {options.rounds} (one every {ROUND_S} s of demo time)")
    print(f"history: {bytes_before / 1e6:.1f} MB on disk before the live rounds")
    print(f"transactions per round: {txs / options.rounds:.2f}")
    print(f"bytes per round: {per_round:,.0f}")
    print(
        f"per hour of live demo: {per_round * rounds_an_hour / 1e6:.1f} MB, "
        f"{txs / options.rounds * rounds_an_hour:,.0f} transactions"
    )
    print(f"per day of live demo: {per_round * rounds_an_hour * 24 / 1e9:.2f} GB")
    print(f"counts: {dict(sorted(live.counts.items()))}")
    print(f"wall time: {elapsed:.1f} s for {options.rounds} rounds")


def _step(app: App) -> Callable[[EmbeddedNode, random.Random], Mapping[str, int]]:
    live_step = app.live_step
    assert live_step is not None

    def step(node: EmbeddedNode, rng: random.Random) -> Mapping[str, int]:
        return live_step(attach(node, app), rng)

    return step


def _log_size(node: EmbeddedNode) -> int:
    head = node.peer.store.head()
    return 0 if head is None else head.log_size


if __name__ == "__main__":
    main()
