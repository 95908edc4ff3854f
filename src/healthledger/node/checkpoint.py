"""Signed checkpoints: every K blocks a peer signs (log size, log root, height, block
hash, state root) as a C2SP signed note (the format is ledger.checkpoint's), so that
peers' copies of the ledger can be compared by anyone holding the peers' certificates.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from healthledger.contracts.rules import MembershipResolver
from healthledger.crypto.keys import SigningKey
from healthledger.ledger.block import BlockHeader

# The format lives in the ledger layer (healthledger.verify checks notes offline with
# it); these names stay importable from here, where the node's callers found them.
from healthledger.ledger.checkpoint import DASH as DASH
from healthledger.ledger.checkpoint import ED25519_ALG as ED25519_ALG
from healthledger.ledger.checkpoint import MAX_NOTE_BYTES as MAX_NOTE_BYTES
from healthledger.ledger.checkpoint import Checkpoint as Checkpoint
from healthledger.ledger.checkpoint import CheckpointError as CheckpointError
from healthledger.ledger.checkpoint import key_id as key_id
from healthledger.ledger.checkpoint import note_signers as note_signers
from healthledger.ledger.checkpoint import open_note as open_note
from healthledger.ledger.checkpoint import origin_of as origin_of
from healthledger.ledger.checkpoint import sign_note as sign_note
from healthledger.ledger.durable import write_durably
from healthledger.ledger.state import StateView

log = logging.getLogger(__name__)

NOTE_SUFFIX = ".note"


class CheckpointWriter:
    """Signs a checkpoint every ``every`` blocks and writes it under ``folder`` as
    ``<height>.note`` (durably), with ``latest.note`` the newest."""

    def __init__(self, folder: Path, *, every: int, name: str, key: SigningKey) -> None:
        if every < 1:
            raise ValueError("checkpoints need every >= 1")
        self.folder = Path(folder)
        self.every = every
        self.name = name
        self._key = key
        self.folder.mkdir(parents=True, exist_ok=True)

    def observe(self, header: BlockHeader, *, origin: str) -> str | None:
        """Sign and write the checkpoint at ``header`` if it is due; the note or None."""
        if header.height == 0 or header.height % self.every != 0:
            return None
        note = sign_note(Checkpoint.of(header, origin=origin), name=self.name, key=self._key)
        for target in (f"{header.height}{NOTE_SUFFIX}", f"latest{NOTE_SUFFIX}"):
            write_durably(self.folder / target, note.encode("utf-8"))
        return note


def verify_peer_note(note: str, *, org: str, state: StateView, origin: str) -> Checkpoint:
    """The checkpoint of a note signed by a registered, unrevoked peer identity of
    ``org`` (resolved from ``state``); CheckpointError otherwise."""
    resolver = MembershipResolver()
    signers = note_signers(note)
    if not signers:
        raise CheckpointError("not a signed note (no signature line)")
    for name in signers:
        if not name.startswith(f"{org}/"):
            continue
        identity = resolver.resolve(name, state)
        if identity is None or identity.revoked or identity.role != "peer":
            continue
        return open_note(
            note, name=name, public_key=identity.public_key.public_bytes_raw(), origin=origin
        )
    raise CheckpointError(f"no signature by a registered peer of {org}", reason="unknown-key")


def read_notes(folder: Path) -> dict[int, str]:
    """Every ``<height>.note`` under ``folder``, by height."""
    notes: dict[int, str] = {}
    if not folder.is_dir():
        return notes
    for path in folder.glob(f"*{NOTE_SUFFIX}"):
        stem = path.name[: -len(NOTE_SUFFIX)]
        if stem.isdigit():
            notes[int(stem)] = path.read_text(encoding="utf-8")
    return notes


@dataclass(frozen=True)
class Divergence:
    """Peers whose checkpoints at one height disagree."""

    height: int
    views: dict[str, str]
    """Block hash each peer signed at ``height``."""
    minority: tuple[str, ...]
    """Peers outside the largest agreeing group (every peer if there is no such group)."""

    def to_json(self) -> dict[str, object]:
        """The JSON form."""
        return {"height": self.height, "views": self.views, "minority": list(self.minority)}


def compare(checkpoints: Mapping[str, Mapping[int, Checkpoint]]) -> list[Divergence]:
    """Heights at which the peers' verified checkpoints disagree (on block hash, log
    root or state root), oldest first."""
    heights = sorted({h for by_height in checkpoints.values() for h in by_height})
    found = []
    for height in heights:
        groups: dict[tuple[str, bytes, str, int], list[str]] = {}
        for peer, by_height in sorted(checkpoints.items()):
            c = by_height.get(height)
            if c is not None:
                view = (c.block_hash, c.log_root, c.state_root, c.log_size)
                groups.setdefault(view, []).append(peer)
        if len(groups) < 2:
            continue
        sizes = sorted((len(g) for g in groups.values()), reverse=True)
        largest = max(groups.values(), key=len) if sizes[0] > sizes[1] else []
        views = {p: view[0] for view, members in groups.items() for p in members}
        minority = tuple(sorted(p for p in views if p not in largest))
        found.append(Divergence(height, dict(sorted(views.items())), minority))
    return found
