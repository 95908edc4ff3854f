"""A saved copy of the health-code board's counts, so the board answers at once after a
restart instead of reading every block again (issue 16, item 6).

The board's counts live in memory. Once following the event feed since the last
snapshot took ``SNAPSHOT_COST_RATIO`` times as long as writing it (or at the first
catch-up), the board writes ``healthcode-board.json`` in the application's folder:
the last event applied, the hash of that event's block, the counts, and the SHA-256
of all of it, synced before it replaces the previous one. A board starting up takes
it only if the hash matches and the chain still has that block with that hash, then
follows the feed from that event; otherwise it logs why and reads the feed from the
start. The counts are public figures (colour changes by day, district and clause,
appeals): nothing personal.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from healthledger.errors import HealthledgerError
from healthledger.ledger.durable import write_durably
from healthledger.node.seam import AppNode

SNAPSHOT_FILE = "healthcode-board.json"
FORMAT = 1
SNAPSHOT_COST_RATIO = 8
"""Following the feed takes this many times as long as the last write before the next."""


class BoardSnapshotRefused(HealthledgerError):
    """A snapshot that is not taken; the message says why."""

    def __init__(self, why: str, *, missing: bool = False) -> None:
        super().__init__(why)
        self.missing = missing
        """True when there is none."""


def digest_of(snapshot: dict[str, Any]) -> str:
    """The SHA-256 a snapshot file records of what it holds."""
    encoded = json.dumps(snapshot, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def save_board(folder: Path, *, after: str, block_hash: str, counts: dict[str, Any]) -> None:
    """Write the counts as followed up to event ``after`` (of the block ``block_hash``)
    under ``folder``, durably."""
    folder.mkdir(parents=True, exist_ok=True)
    snapshot = {"format": FORMAT, "after": after, "block_hash": block_hash, "counts": counts}
    text = json.dumps({"sha256": digest_of(snapshot), "snapshot": snapshot})
    write_durably(folder / SNAPSHOT_FILE, text.encode("utf-8"))


def load_board(folder: Path, *, node: AppNode) -> tuple[str, dict[str, Any]]:
    """The event id the snapshot under ``folder`` was followed up to and its counts,
    once it checks out against the chain of ``node``; BoardSnapshotRefused otherwise."""
    try:
        text = (folder / SNAPSHOT_FILE).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise BoardSnapshotRefused("there is none", missing=True) from exc
    except OSError as exc:
        raise BoardSnapshotRefused(f"it does not read ({exc})") from exc
    try:
        found = json.loads(text)
        snapshot, digest = found["snapshot"], found["sha256"]
        after, block_hash, counts = snapshot["after"], snapshot["block_hash"], snapshot["counts"]
        height = int(str(after).split(":", 1)[0])
    except (ValueError, TypeError, KeyError) as exc:
        raise BoardSnapshotRefused(f"it is not a snapshot ({exc})") from exc
    if digest != digest_of(snapshot):
        raise BoardSnapshotRefused("its SHA-256 does not match what it holds")
    if snapshot.get("format") != FORMAT:
        raise BoardSnapshotRefused(f"it has format {snapshot.get('format')}, not {FORMAT}")
    on_chain = node.block_hash(height)
    if on_chain is None:
        raise BoardSnapshotRefused(f"it is at block {height}, above this chain's head")
    if on_chain != block_hash:
        raise BoardSnapshotRefused(f"block {height} of this chain is not the one it saw")
    return str(after), dict(counts)
