"""The serving side of joining from a snapshot (see ``node.snapshot`` for the format):
recording the ordering stream position at each checkpoint height, gathering the
organisations' signed checkpoints of a height, and planning and streaming the
snapshot an existing peer serves.

The stream position after a block is not kept per block in the ledger store, so each
peer records it, as it commits, for every checkpoint-due block (``PositionLog``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from healthledger.crypto.canonical import canonical_json
from healthledger.ledger.block import BlockHeader
from healthledger.ledger.durable import write_durably
from healthledger.ledger.store import LedgerStore
from healthledger.node.checkpoint import NOTE_SUFFIX, CheckpointWriter, origin_of
from healthledger.node.embedded import CHECKPOINT_DIR
from healthledger.node.peer_directory import PeerDirectory
from healthledger.node.peer_tls import peer_client
from healthledger.node.snapshot import (
    CHECKPOINT_PATH,
    Manifest,
    SnapshotUnavailable,
    member_orgs,
    vouching,
)

log = logging.getLogger(__name__)

POSITIONS_DIR = "stream_positions"
CANDIDATE_HEIGHTS = 4
"""A serving peer tries at most this many of its latest checkpoint heights."""


# --- stream positions of checkpoint heights ----------------------------------------


class PositionLog:
    """The ordering stream position after each checkpoint-due block, one small file per
    height under ``folder``; written as the block commits."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def record(self, height: int, position: int) -> None:
        """Remember that the stream continues after ``position`` once block ``height``
        is committed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        write_durably(self.folder / str(height), str(position).encode("ascii"))

    def get(self, height: int) -> int | None:
        """The position recorded after block ``height``, or None."""
        try:
            text = (self.folder / str(height)).read_text(encoding="ascii")
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def heights(self) -> list[int]:
        """Heights with a recorded position, highest first."""
        if not self.folder.is_dir():
            return []
        return sorted(
            (int(p.name) for p in self.folder.iterdir() if p.name.isdigit()), reverse=True
        )


class PositionRecorder(CheckpointWriter):
    """Wraps a peer's checkpoint writer: at each checkpoint-due block it first records
    the stream position stored with that block (exact, since it runs on the commit
    path before the next block), then lets the wrapped writer do its work."""

    def __init__(self, inner: CheckpointWriter, *, store: LedgerStore, positions: PositionLog):
        # Not CheckpointWriter.__init__: everything but observe is the wrapped writer's.
        self.folder = inner.folder
        self.every = inner.every
        self.name = inner.name
        self.inner = inner
        self._store = store
        self._positions = positions

    def observe(self, header: BlockHeader, *, origin: str) -> str | None:
        """Record the position if the block is checkpoint-due, then delegate."""
        if header.height and header.height % self.every == 0:
            position = self._store.ordering_position()
            if position > 0:
                try:
                    self._positions.record(header.height, position)
                except OSError as exc:
                    log.warning("stream position at %d not recorded: %s", header.height, exc)
        return self.inner.observe(header, origin=origin)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def record_positions(
    data_dir: Path, peer_checkpoints: CheckpointWriter | None, store: LedgerStore
) -> tuple[PositionLog, CheckpointWriter | None]:
    """The position log of a peer folder and the checkpoint writer to install in its
    peer (the given one wrapped, once) so positions are recorded from now on."""
    positions = PositionLog(data_dir / POSITIONS_DIR)
    if peer_checkpoints is None or isinstance(peer_checkpoints, PositionRecorder):
        return positions, peer_checkpoints
    return positions, PositionRecorder(peer_checkpoints, store=store, positions=positions)


# --- serving -----------------------------------------------------------------------


def own_note(data_dir: Path, height: int) -> str | None:
    """This peer's signed checkpoint at ``height``, or None."""
    try:
        return (data_dir / CHECKPOINT_DIR / f"{height}{NOTE_SUFFIX}").read_text(encoding="utf-8")
    except OSError:
        return None


def gather_notes(
    height: int,
    *,
    own_org: str,
    own: str | None,
    directory: PeerDirectory,
    timeout_s: float = 5.0,
) -> dict[str, str]:
    """Signed checkpoints at ``height``: this peer's, and those the other peers of the
    directory serve (unreachable peers and missing notes are skipped; the notes are
    verified by whoever uses them)."""
    notes = {} if own is None else {own_org: own}
    with peer_client(timeout=timeout_s) as client:
        for org, url in directory.peers.items():
            if org in notes:
                continue
            try:
                answer = client.get(f"{url}{CHECKPOINT_PATH}/{height}")
            except httpx.HTTPError:
                continue
            if answer.status_code == 200 and len(answer.content) < 16 * 1024:
                notes[org] = answer.text
    return notes


@dataclass(frozen=True)
class SnapshotPlan:
    """A snapshot ready to serve: its manifest and the notes that vouch for it."""

    manifest: Manifest
    checkpoints: dict[str, str]

    def header_line(self) -> bytes:
        """The first line of the snapshot."""
        return (
            canonical_json({"manifest": self.manifest.to_json(), "checkpoints": self.checkpoints})
            + b"\n"
        )


def plan_snapshot(
    store: LedgerStore,
    positions: PositionLog,
    notes_at: Callable[[int], Mapping[str, str]],
) -> SnapshotPlan:
    """The snapshot at the highest recent checkpoint height whose checkpoint a majority
    of the member organisations have signed; SnapshotUnavailable if there is none yet."""
    height = store.height()
    if height == 0:
        raise SnapshotUnavailable("this peer holds no ledger yet")
    origin = origin_of(store.header(0))
    members = member_orgs(store)
    needed = len(members) // 2 + 1
    tried = []
    for candidate in [h for h in positions.heights() if h < height][:CANDIDATE_HEIGHTS]:
        position = positions.get(candidate)
        if position is None:
            continue
        header = store.header(candidate)
        good, _ = vouching(notes_at(candidate), header=header, state=store, origin=origin)
        tried.append(f"{candidate}: {len(good)}")
        if len(good) < needed:
            continue
        digest = hashlib.sha256()
        for h in range(candidate + 1):
            digest.update(store.block_bytes(h) + b"\n")
        manifest = Manifest(
            origin=origin,
            height=candidate,
            block_hash=header.hash,
            log_size=header.log_size,
            log_root=header.log_root,
            state_root=header.state_root,
            stream_position=position,
            content_hash=digest.hexdigest(),
        )
        return SnapshotPlan(manifest, good)
    seen = f" (checkpoints signed by height: {', '.join(tried)})" if tried else ""
    raise SnapshotUnavailable(
        f"no recent checkpoint of this peer is signed by a majority ({needed} of "
        f"{len(members)}) of the organisations yet{seen}; retry after more blocks"
    )


def snapshot_lines(store: LedgerStore, plan: SnapshotPlan) -> Iterator[bytes]:
    """The snapshot's lines: the header line, then blocks 0..H as stored."""
    yield plan.header_line()
    for height in range(plan.manifest.height + 1):
        yield store.block_bytes(height) + b"\n"
