"""Snapshots to join from (ARCHITECTURE.md section 5): a new or wiped peer starts
from the ledger up to a height H served by an existing peer, plus the ordering stream
position right after H, and then follows the stream from there.

A snapshot is served as newline-delimited JSON: the first line is
``{"manifest": {...}, "checkpoints": {"<org>": "<signed note>", ...}}``, then one
line per block 0..H, each the block's stored canonical JSON. The manifest names the
chain (``origin``), H, block H's hash, the global log's size and root and the state
root after H, the stream position after H, and ``content_hash``: the hex SHA-256 of
every block line that follows, newlines included.

H is always a checkpoint height, and the serving peer sends the signed checkpoints
(C2SP signed notes) of that height by a majority of the member organisations.

This module holds the format (the manifest) and the check that notes vouch for a
block; ``node.snapshot_serving`` records stream positions and serves snapshots, and
``node.snapshot_install`` fetches, verifies and installs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from healthledger.contracts.rules import MEMBERSHIP
from healthledger.ledger.block import BlockHeader
from healthledger.ledger.state import StateView
from healthledger.node.checkpoint import CheckpointError, verify_peer_note
from healthledger.node.errors import NodeError, NodeUnavailable

SNAPSHOT_PATH = "/api/v1/snapshot"
CHECKPOINT_PATH = "/api/v1/network/checkpoints"
MEDIA_TYPE = "application/x-ndjson"
MANIFEST_FORMAT = 1
MAX_LINE_BYTES = 64 * 1024 * 1024
"""A snapshot line (one block) longer than this is refused without being parsed."""


class SnapshotError(NodeError):
    """A snapshot cannot be used: malformed, tampered, not vouched for, or not served."""


class SnapshotUnavailable(NodeUnavailable):
    """No snapshot can be served yet (no checkpoint vouched for by a majority)."""


# --- the manifest ------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """What a snapshot holds, to be vouched for by the organisations' checkpoints."""

    origin: str
    """The chain: ``healthledger/<genesis block hash>``."""
    height: int
    """The last block of the snapshot (a checkpoint height)."""
    block_hash: str
    log_size: int
    log_root: str
    """Hex root of the global log after block ``height``."""
    state_root: str
    stream_position: int
    """The ordering stream position after block ``height``: follow from the next one."""
    content_hash: str
    """Hex SHA-256 of the block lines (each with its newline)."""

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "format": MANIFEST_FORMAT,
            "origin": self.origin,
            "height": self.height,
            "block_hash": self.block_hash,
            "log_size": self.log_size,
            "log_root": self.log_root,
            "state_root": self.state_root,
            "stream_position": self.stream_position,
            "content_hash": self.content_hash,
        }

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        """Parse a manifest; SnapshotError naming what is wrong."""
        fields = {
            "format": int,
            "origin": str,
            "height": int,
            "block_hash": str,
            "log_size": int,
            "log_root": str,
            "state_root": str,
            "stream_position": int,
            "content_hash": str,
        }
        if not isinstance(data, Mapping) or set(data) != set(fields):
            raise SnapshotError(f"the manifest must have exactly the fields {sorted(fields)}")
        for name, kind in fields.items():
            if not isinstance(data[name], kind) or isinstance(data[name], bool):
                raise SnapshotError(
                    f"manifest field {name} is not a{'n' * (kind is int)} {kind.__name__}"
                )
        if data["format"] != MANIFEST_FORMAT:
            raise SnapshotError(f"manifest format {data['format']} is not {MANIFEST_FORMAT}")
        if data["height"] < 1 or data["stream_position"] < 1 or data["log_size"] < 1:
            raise SnapshotError("manifest height, log size and stream position must be positive")
        return cls(**{k: v for k, v in data.items() if k != "format"})

    def agrees(self, header: BlockHeader) -> bool:
        """True if ``header`` is the manifest's block (height, hash and roots)."""
        return (
            header.height == self.height
            and header.hash == self.block_hash
            and header.log_size == self.log_size
            and header.log_root == self.log_root
            and header.state_root == self.state_root
        )


def member_orgs(state: StateView) -> list[str]:
    """The member organisations in membership state."""
    return [
        str(v.value["id"])
        for _, v in state.range_state(MEMBERSHIP, "org/", "org0", 10_000)
        if isinstance(v.value, dict) and "id" in v.value
    ]


def vouching(
    notes: Mapping[str, str], *, header: BlockHeader, state: StateView, origin: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Of ``notes`` (by organisation), those that verify as signed by a registered peer
    of that organisation for the chain ``origin`` and agree with ``header``, and why
    each other one does not."""
    good: dict[str, str] = {}
    bad: dict[str, str] = {}
    for org, note in sorted(notes.items()):
        try:
            checkpoint = verify_peer_note(note, org=org, state=state, origin=origin)
        except CheckpointError as exc:
            bad[org] = str(exc)
            continue
        if (
            checkpoint.height != header.height
            or checkpoint.block_hash != header.hash
            or checkpoint.log_root.hex() != header.log_root
            or checkpoint.log_size != header.log_size
            or checkpoint.state_root != header.state_root
        ):
            bad[org] = f"its checkpoint at {checkpoint.height} is of another block"
            continue
        good[org] = note
    return good, bad
